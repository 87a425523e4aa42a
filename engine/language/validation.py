"""Whole-graph checks on a parsed ``TaskDef``: references, reachability, dead ends, timing.

The parser has already checked every node on its own; this module checks how the states fit
together. It runs only on a definition that parsed without errors, and cites nodes through the
document's ``MarkIndex``.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.errors import Problem, Severity
from engine.language.durations import format_duration
from engine.language.model import PollCondition, State, TaskDef
from engine.language.yamlnodes import MarkIndex


def validate(task: TaskDef, marks: MarkIndex) -> list[Problem]:
    """Every graph problem of ``task`` (errors and warnings), in no particular order."""
    checker = _Checker(task, marks)
    for check in (
        checker.start_state,
        checker.references,
        checker.final_shapes,
        checker.dead_ends,
        checker.reachability,
        checker.timeouts,
        checker.shadowed_transitions,
        checker.duplicate_names,
    ):
        check()
    return checker.problems


class _Checker:
    def __init__(self, task: TaskDef, marks: MarkIndex):
        self.task = task
        self.marks = marks
        self.names = task.state_names
        self.problems: list[Problem] = []

    def report(self, path: str, message: str, *, key: bool = False, warning: bool = False) -> None:
        mark = self.marks.key(path) if key else self.marks.value(path)
        severity = Severity.WARNING if warning else Severity.ERROR
        self.problems.append(Problem(mark.source, mark.line, mark.column, path, message, severity))

    def path_of(self, state: State) -> str:
        """Where ``state`` was written: under ``states``, or only in ``final_states``."""
        path = f"states.{state.name}"
        return path if path in self.marks.values else f"final_states.{state.name}"

    def start_state(self) -> None:
        if self.task.start_state not in self.names:
            self.report(
                "start_state",
                f"start_state '{self.task.start_state}' is not a state; "
                f"states are: {_listing(self.names)}",
            )

    def references(self) -> None:
        for target, path, what in self.edges():
            if target not in self.names:
                self.report(
                    path,
                    f"{what} goes to '{target}', which is not a state; "
                    f"states are: {_listing(self.names)}",
                )

    def edges(self) -> Iterator[tuple[str, str, str]]:
        """Every (target, path, what) leaving a state: transitions, on_error, on_timeout."""
        for state in self.task.states:
            for target, path, what in _state_edges(state):
                yield target, f"{self.path_of(state)}.{path}", what

    def final_shapes(self) -> None:
        for state in self.task.states:
            if not state.is_final:
                continue
            for key in ("instructions", "transitions"):
                if getattr(state, key):
                    self.report(
                        f"{self.path_of(state)}.{key}",
                        f"final state '{state.name}' has {key}; a final state ends the run, "
                        f"so remove them or make the state non-final",
                        key=True,
                    )

    def dead_ends(self) -> None:
        for state in self.task.states:
            if not state.is_final and not state.transitions:
                self.report(
                    self.path_of(state),
                    f"state '{state.name}' is not final and has no transitions; "
                    "add a transition or mark it final (final: succeeded)",
                    key=True,
                )

    def reachability(self) -> None:
        graph: dict[str, set[str]] = {name: set() for name in self.names}
        for target, path, _what in self.edges():
            source = path.split(".")[1]
            if target in graph:
                graph[source].add(target)
        reachable = closure(graph, {self.task.start_state} & set(graph))
        reverse: dict[str, set[str]] = {name: set() for name in self.names}
        for source, targets in graph.items():
            for target in targets:
                reverse[target].add(source)
        finals = {state.name for state in self.task.states if state.is_final}
        can_finish = closure(reverse, finals)
        for state in self.task.states:
            self.report_reachability(state, state.name in reachable, state.name in can_finish)

    def report_reachability(self, state: State, reachable: bool, can_finish: bool) -> None:
        path = self.path_of(state)
        if not reachable and self.task.start_state in self.names:
            self.report(
                path,
                f"state '{state.name}' is unreachable from start_state '{self.task.start_state}'",
                key=True,
            )
        elif reachable and not can_finish:
            self.report(
                path,
                f"no final state can be reached from state '{state.name}'; a run that enters "
                "it can only end by its deadline",
                key=True,
                warning=True,
            )

    def timeouts(self) -> None:
        deadline = self.task.deadline
        if deadline is None:
            return
        default = self.task.max_global_transition_timeout
        if default is not None and default > deadline:
            self.report(
                "max_global_transition_timeout",
                f"max_global_transition_timeout {format_duration(default)} is longer than the "
                f"run deadline {format_duration(deadline)}; the deadline will end the run first",
                warning=True,
            )
        for state in self.task.states:
            if state.timeout is not None and state.timeout > deadline:
                self.report(
                    f"{self.path_of(state)}.timeout",
                    f"state '{state.name}' timeout {format_duration(state.timeout)} is longer "
                    f"than the run deadline {format_duration(deadline)}; the deadline will end "
                    "the run first",
                    warning=True,
                )

    def shadowed_transitions(self) -> None:
        for state in self.task.states:
            always = next((t for t in state.transitions if t.condition is None), None)
            if always is None:
                continue
            first = state.transitions.index(always)
            for index, later in enumerate(state.transitions[first + 1 :], start=first + 1):
                self.report(
                    f"{self.path_of(state)}.transitions[{index}]",
                    f"transition to '{later.target}' can never fire: the transition before it "
                    f"(to '{always.target}') has no condition and is always taken first",
                    warning=True,
                )

    def duplicate_names(self) -> None:
        for state in self.task.states:
            path = self.path_of(state)
            for key, items in (
                ("instructions", state.instructions),
                ("transitions", state.transitions),
            ):
                names = [item.name for item in items]
                for index, name in enumerate(names):
                    if name is not None and name in names[:index]:
                        self.report(
                            f"{path}.{key}[{index}].name",
                            f"{key[:-1]} name '{name}' is used twice in state '{state.name}'; "
                            "names must be unique within a state (history and idempotency "
                            "keys use them)",
                        )


def _state_edges(state: State) -> Iterator[tuple[str, str, str]]:
    if state.on_timeout:
        yield state.on_timeout, "on_timeout", "on_timeout"
    for index, instruction in enumerate(state.instructions):
        if instruction.on_error:
            yield instruction.on_error, f"instructions[{index}].on_error", "on_error"
    for index, transition in enumerate(state.transitions):
        yield transition.target, f"transitions[{index}].to", "transition"
        condition = transition.condition
        if isinstance(condition, PollCondition) and condition.on_error:
            yield condition.on_error, f"transitions[{index}].poll.on_error", "poll on_error"


def _listing(names: tuple[str, ...] | list[str], shown: int = 20) -> str:
    """The first ``shown`` names, comma-separated: a task of 1,000 states does not put all of
    them into every message that cites a missing one."""
    more = f", … ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def closure(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    """Every node reachable from ``start`` in ``graph`` (start included), without recursion:
    a task may have a thousand states in a chain."""
    seen = set(start)
    frontier = list(start)
    while frontier:
        for target in graph[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen
