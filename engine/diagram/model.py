"""A task definition as a graph to draw: nodes for states, edges for every way out of a state.

Pure data built from a ``TaskDef``; the renderers (``dot``, ``mermaid``, ``svg``) only format
it, so the three outputs always show the same graph. Labels are plain text here, never
escaped: each renderer escapes for its own syntax, because state names and predicates are
whatever the author wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from engine.language.durations import format_duration
from engine.language.model import (
    PollCondition,
    State,
    SubscribeCondition,
    TaskDef,
    Transition,
    WaitCondition,
    WhenCondition,
)
from engine.language.validation import closure

# A ``when`` predicate is code; past this many characters its label is cut (with "…"), and
# the whole text stays in the edge's ``detail`` (a tooltip in SVG).
LABEL_CHARS = 40


class EdgeKind(StrEnum):
    """How a run leaves a state along an edge; each kind is drawn differently."""

    TRANSITION = "transition"
    ON_ERROR = "on_error"  # an instruction's or a poll's final failure
    ON_TIMEOUT = "on_timeout"  # the state's timeout


class Lint(StrEnum):
    """Graph problems worth showing on the node itself (validation reports them too)."""

    UNREACHABLE = "unreachable"
    NO_FINAL = "no path to a final state"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    start: bool = False
    outcome: str | None = None  # "succeeded" | "failed" for final states
    instructions: int = 0
    lints: tuple[Lint, ...] = ()

    @property
    def subtitle(self) -> str:
        """The second line of the node: what kind of state this is, in words."""
        parts = ["start"] if self.start else []
        if self.outcome:
            parts.append(f"final: {self.outcome}")
        if self.instructions:
            parts.append(f"{self.instructions} instruction{'s' if self.instructions > 1 else ''}")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str  # short: drawn on the edge
    condition: str = ""  # a transition's condition kind (wait, poll, subscribe, when, always)
    detail: str = ""  # the whole condition and the transition's name, when the label lacks them


@dataclass(frozen=True, slots=True)
class Diagram:
    task: str
    version: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)


def diagram_of(task: TaskDef) -> Diagram:
    """The graph of ``task``; edges to states that do not exist are left out (a loaded task
    has none; validation reports them on a draft)."""
    names = set(task.state_names)
    edges = tuple(e for state in task.states for e in _edges_of(task, state)
                  if e.target in names)
    lints = _lints(task, edges)
    nodes = tuple(
        Node(name=s.name, start=s.name == task.start_state,
             outcome=str(s.outcome) if s.outcome else None,
             instructions=len(s.instructions), lints=lints.get(s.name, ()))
        for s in task.states)
    return Diagram(task=task.name, version=task.version, nodes=nodes, edges=edges)


def _edges_of(task: TaskDef, state: State) -> Iterator[Edge]:
    for transition in state.transitions:
        label, detail = condition_label(transition)
        yield Edge(state.name, transition.target, EdgeKind.TRANSITION, label,
                   transition.condition_kind, detail)
        condition = transition.condition
        if isinstance(condition, PollCondition) and condition.on_error:
            yield Edge(state.name, condition.on_error, EdgeKind.ON_ERROR,
                       "on_error: poll gave up")
    for instruction in state.instructions:
        if instruction.on_error:
            yield Edge(state.name, instruction.on_error, EdgeKind.ON_ERROR,
                       f"on_error: {instruction.name}")
    if state.on_timeout:
        timeout = task.timeout_for(state)
        after = f" {format_duration(timeout)}" if timeout is not None else ""
        yield Edge(state.name, state.on_timeout, EdgeKind.ON_TIMEOUT, f"on_timeout{after}")


def condition_label(transition: Transition) -> tuple[str, str]:
    """(short label, its full text with the transition's name, or "" when the label says it all)."""
    condition = transition.condition
    if isinstance(condition, WaitCondition):
        text = (f"wait {format_duration(condition.duration)}" if condition.duration is not None
                else f"wait until {condition.until}")
    elif isinstance(condition, SubscribeCondition):
        text = f"subscribe {condition.event}"
    elif isinstance(condition, PollCondition):
        text = f"poll every {format_duration(condition.every)}"
    elif isinstance(condition, WhenCondition):
        text = f"when {' '.join(condition.predicate.split())}"
    else:
        text = "always"
    named = f"{transition.name}: {text}" if transition.name else text
    return shorten(text), named if named != shorten(text) else ""


def shorten(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lints(task: TaskDef, edges: tuple[Edge, ...]) -> dict[str, tuple[Lint, ...]]:
    """Unreachable from the start, or unable to reach any final state (every edge kind
    counts, as in validation)."""
    forward: dict[str, set[str]] = {name: set() for name in task.state_names}
    backward: dict[str, set[str]] = {name: set() for name in task.state_names}
    for edge in edges:
        forward[edge.source].add(edge.target)
        backward[edge.target].add(edge.source)
    reachable = closure(forward, {task.start_state} & forward.keys())
    finishing = closure(backward, {s.name for s in task.states if s.is_final})
    lints: dict[str, tuple[Lint, ...]] = {}
    for name in task.state_names:
        found = [Lint.UNREACHABLE] if name not in reachable else []
        if name not in finishing:
            found.append(Lint.NO_FINAL)
        if found:
            lints[name] = tuple(found)
    return lints
