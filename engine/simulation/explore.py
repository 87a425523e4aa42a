"""The checker: every end a run of a task can reach, and every way it can get stuck.

A breadth-first search over the task's states, each looked at with ``moves_of`` (the
orders in which its conditions can be fulfilled). The first path found to each end is a
shortest one (fewest transitions); each is turned into a script (``script_for``) and dry
run (``simulate``) to confirm it, so what is reported is what the real runner does with
that script. A path that needs a predicate to hold carries it as an assumption: the
generated script answers with empty results, which may not make it hold, and is then
reported unconfirmed rather than wrong. After the search, states from which no end can be
reached are reported as loops with no exit. The search is bounded in states and moves and
says when it hit the bound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from engine.clock import to_iso
from engine.language.model import TaskDef
from engine.simulation.bounds import Bounds
from engine.simulation.driver import simulate
from engine.simulation.errors import SimulationError
from engine.simulation.moves import Move, all_succeed, events_waited, moves_of
from engine.simulation.script import DEFAULT_START, script_from_data
from engine.simulation.solve import variants, with_template_values

# How far past the last move a script for a stuck way runs: long enough to show nothing
# more happens, short enough that the dry run is quick (a poll every minute is 1,440
# steps a day, under the default bound of steps).
STUCK_HORIZON = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Step:
    state: str
    move: Move
    at: timedelta  # when the state was entered, from the start


@dataclass(slots=True)
class Finding:
    """A reachable end (``final``, ``failed``, ``timed_out``) or a stuck way."""

    kind: str  # final | failed | timed_out | dead_end | unsent_event | endless_poll |
    #            no_exit_loop
    state: str
    status: str
    message: str
    path: list[Step]
    script: dict[str, Any]
    assumes: tuple[str, ...] = ()
    confirmed: bool | None = None  # the dry run of the script ended as reported
    observed: str = ""

    @property
    def stuck(self) -> bool:
        return self.kind not in {"final", "failed", "timed_out"}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "state": self.state, "status": self.status,
                "message": self.message, "stuck": self.stuck,
                "path": [f"{s.state}: {s.move.how}" for s in self.path],
                "assumes": list(self.assumes), "confirmed": self.confirmed,
                "observed": self.observed, "script": self.script}


@dataclass(slots=True)
class Exploration:
    task: str
    version: int
    ends: list[Finding] = field(default_factory=list)
    stuck: list[Finding] = field(default_factory=list)
    states_seen: int = 0
    moves_seen: int = 0
    bounded: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "version": self.version, "bounded": self.bounded,
                "states_seen": self.states_seen, "moves_seen": self.moves_seen,
                "ends": [f.to_json() for f in self.ends],
                "stuck": [f.to_json() for f in self.stuck]}

    def to_text(self) -> str:
        lines = [f"{self.task} v{self.version}: {len(self.ends)} end(s), "
                 f"{len(self.stuck)} stuck way(s); {self.states_seen} state(s), "
                 f"{self.moves_seen} move(s) explored"
                 + (" (BOUND HIT: the search stopped early)" if self.bounded else "")]
        for title, findings in (("ends", self.ends), ("stuck", self.stuck)):
            for f in findings:
                mark = {True: "confirmed", False: f"unconfirmed: {f.observed}",
                        None: "not run"}[f.confirmed]
                lines.append(f"{title[:-1] if title == 'ends' else 'STUCK'} {f.kind} in "
                             f"'{f.state}' ({f.status}) - {f.message} [{mark}]")
                lines.extend(f"    {s.state}: {s.move.how}" for s in f.path)
                lines.extend(f"    assumes: {a}" for a in f.assumes)
        return "\n".join(lines)


def explore(task: TaskDef, *, input: dict[str, Any] | None = None, max_states: int = 1_000,
            max_moves: int = 10_000, confirm: bool = True) -> Exploration:
    """Explore ``task`` from its start state.

    Args:
        input: the input the confirming dry runs start with.
        max_states, max_moves: bounds of the search (``Exploration.bounded`` says when hit).
        confirm: dry run each finding's script.
    """
    search = _Search(task, max_states, max_moves)
    search.run()
    report = search.report
    for finding in search.found.values():
        finding.script = with_template_values(task, script_for(task, finding, input))
        if confirm:
            _confirm(task, finding)
        (report.stuck if finding.stuck else report.ends).append(finding)
    return report


class _Search:
    """The breadth-first search; ``found`` keeps one finding per (kind, state, status)."""

    def __init__(self, task: TaskDef, max_states: int, max_moves: int):
        self.task, self.max_states, self.max_moves = task, max_states, max_moves
        self.report = Exploration(task=task.name, version=task.version)
        self.seen: dict[str, list[Step]] = {task.start_state: []}
        self.edges: dict[str, set[str]] = {}
        self.ending: set[str] = set()  # states with a move that ends the run
        self.queue = deque([(task.start_state, timedelta(0))])
        self.found: dict[tuple[str, str, str], Finding] = {}

    def run(self) -> None:
        while self.queue and not self.report.bounded:
            name, at = self.queue.popleft()
            self._visit(name, at)
        trapped = _without_exit(self.edges, self.ending, self.seen)
        for name in trapped:
            path = self.seen[name]
            if path and path[-1].state in trapped:
                continue  # reported where the run enters the loop
            step = Step(name, Move(how="loops with no way to an end", target=None),
                        timedelta(0))
            _note(self.found, Finding(
                "no_exit_loop", name, "waiting", f"from state '{name}' no end can be "
                "reached: the run loops forever", [*path, step], {}, _assumed(path)))

    def _visit(self, name: str, at: timedelta) -> None:
        task = self.task
        self.report.states_seen += 1
        left = task.deadline - at if task.deadline is not None else None
        options = moves_of(task, task.state(name), left, self._watched(self.seen[name]))
        self.edges[name] = set()
        if task.deadline is not None and options.waits:
            self.ending.add(name)  # time passes here: a loop through it ends by the deadline
        for move in options.moves:
            self.report.moves_seen += 1
            if self.report.moves_seen > self.max_moves:
                self.report.bounded = True
                return
            self._follow(name, Step(name, move, at))
        for stuck in options.stuck:
            step = Step(name, Move(how=stuck.message, target=None, replies=stuck.replies), at)
            path = [*self.seen[name], step]
            _note(self.found, Finding(stuck.kind, name, "waiting", stuck.message, path, {},
                                      _assumed(path[:-1]) + stuck.assumes))

    def _watched(self, path: list[Step]) -> frozenset[str]:
        """Events waited for by the states the path was in at its last moment (the one it
        left then included: an event arriving as it is left is still its to take)."""
        found: set[str] = set()
        for step in reversed(path):
            found |= events_waited(self.task.state(step.state))
            if step.move.after > timedelta(0):
                break
        return frozenset(found)

    def _follow(self, name: str, step: Step) -> None:
        move, path = step.move, [*self.seen[name], step]
        if move.target is None:
            self.ending.add(name)
            status = move.status or "failed"
            _note(self.found, Finding(status, name, status, move.how, path, {}, _assumed(path)))
            return
        target = self.task.state(move.target)
        self.edges[name].add(move.target)
        if target.is_final:
            self.ending.add(name)
            _note(self.found, Finding("final", target.name, str(target.outcome), move.how,
                                      path, {}, _assumed(path)))
        elif move.target not in self.seen:
            if len(self.seen) >= self.max_states:
                self.report.bounded = True
                return
            self.seen[move.target] = path
            self.queue.append((move.target, step.at + move.after))


def _assumed(path: list[Step]) -> tuple[str, ...]:
    return tuple(a for step in path for a in step.move.assumes)


def _note(found: dict[tuple[str, str, str], Finding], finding: Finding) -> None:
    """Keep the first (shortest) path to each end; prefer one assuming the least."""
    key = (finding.kind, finding.state, finding.status)
    current = found.get(key)
    if current is None or (len(finding.path) == len(current.path)
                           and len(finding.assumes) < len(current.assumes)):
        found[key] = finding


def _without_exit(edges: dict[str, set[str]], ending: set[str],
                  seen: dict[str, list[Step]]) -> list[str]:
    """States seen from which no state with an ending move can be reached."""
    reaches = set(ending)
    changed = True
    while changed:
        changed = False
        for name, targets in edges.items():
            if name not in reaches and targets & reaches:
                reaches.add(name)
                changed = True
    return [name for name in seen if name not in reaches and name in edges and edges[name]]


def script_for(task: TaskDef, finding: Finding, input: dict[str, Any] | None) -> dict[str, Any]:
    """The script that takes a run down ``finding``'s path (in the script's own form)."""
    replies: dict[str, dict[str, Any]] = {}
    events = []
    for step in finding.path:
        replies.update(dict(step.move.replies))
        if step.move.event is not None:
            events.append({"at": _duration(step.at + step.move.event_after),
                           "name": step.move.event})
    if finding.kind == "no_exit_loop":  # the run goes round: answer the loop's calls too
        replies = {**all_succeed(task), **replies}
    last = finding.path[-1]
    script: dict[str, Any] = {"start": to_iso(DEFAULT_START)}
    if input:
        script["input"] = input
    if replies:
        script["instructions"] = replies
    if events:
        script["events"] = events
    if finding.stuck:
        script["until"] = _duration(last.at + STUCK_HORIZON)
    script["expect"] = {"status": finding.status}
    if finding.kind != "no_exit_loop":  # a loop is in any of its states when time runs out
        script["expect"]["state"] = finding.state
    return script


def _duration(delta: timedelta) -> str:
    millis = int(delta.total_seconds() * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _confirm(task: TaskDef, finding: Finding) -> None:
    """Dry run the finding's script; ``confirmed`` when it ends in the state and status
    reported. When it does not and the path assumes predicates, try the script's variants
    (``engine.simulation.solve``) and keep the first that confirms."""
    _try(task, finding, finding.script)
    if finding.confirmed or not finding.assumes:
        return
    for variant in variants(task, finding.script, finding.assumes):
        if _try(task, finding, variant):
            finding.script, finding.observed = variant, ""
            return


def _try(task: TaskDef, finding: Finding, data: dict[str, Any]) -> bool:
    try:
        script = script_from_data(data, f"<{finding.kind} in {finding.state}>")
        result = simulate(task, script, bounds=Bounds(max_wall_seconds=5.0))
    except SimulationError as exc:
        finding.confirmed, finding.observed = False, str(exc)
        return False
    expect = data.get("expect", {})
    finding.confirmed = result.status == expect.get("status") and (
        "state" not in expect or result.state == expect["state"])
    if not finding.confirmed:
        error = f": {result.error['message']}" if result.error else ""
        finding.observed = (f"the dry run ended {result.status} in '{result.state}' "
                            f"({result.message}{error})")
    return finding.confirmed
