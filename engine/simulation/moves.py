"""The ways out of one state, for the checker (``engine.simulation.explore``).

Each state is looked at as the runner races it: its instructions in order (each side
effect may succeed, or fail for good and follow ``on_error``), then its transitions'
conditions. Which condition can be fulfilled first follows the runner's rules: a
transition without a condition (or a zero wait) wins at once over every later one; a
``when`` may or may not hold; an event may arrive, or a poll succeed, at any moment before
the earliest timer; of the timers, the earliest fires (ties: the run's deadline, then the
waits in declaration order, then the state timeout, then a poll giving up). Predicates are
not solved: a move that needs one to hold says so (``assumes``).

This module names condition and instruction kinds on purpose: it models them. A kind it
does not know is treated as an event (it may come at any moment, or never).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from engine import instructions
from engine.backoff import poll_interval
from engine.language import format_duration
from engine.language.model import Instruction, PollCondition, State, TaskDef, Transition

# Attempts counted to find when a poll limited only by max_duration gives up.
_MAX_POLL_STEPS = 100_000


@dataclass(frozen=True, slots=True)
class Move:
    """One way out of a state entry.

    Attributes:
        how: what happens, for people ("event 'paid' arrives first").
        target: the next state; None when the run ends in this state.
        status: how the run ends when ``target`` is None (failed, timed_out).
        after: virtual time from the state's entry to the move.
        replies: ``state/instruction`` -> a reply (the script's form) for this entry.
        event: the name of an event that must arrive ``event_after`` the state's entry.
        assumes: predicates the script must make hold (or not) for this move.
    """

    how: str
    target: str | None
    status: str | None = None
    after: timedelta = timedelta(0)
    replies: tuple[tuple[str, dict[str, Any]], ...] = ()
    event: str | None = None
    event_after: timedelta = timedelta(0)
    assumes: tuple[str, ...] = ()


# An event that must win a race arrives this long after the state's entry: after the run
# left every earlier state (which may wait for an event of the same name at the same
# virtual moment), before any timer. One that must beat a transition taken at once arrives
# with the entry itself (it is found buffered when the state is armed).
EVENT_AFTER_ENTRY = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Stuck:
    """A way the run can wait in this state forever."""

    kind: str  # dead_end | unsent_event | endless_poll
    message: str
    replies: tuple[tuple[str, dict[str, Any]], ...] = ()
    assumes: tuple[str, ...] = ()


@dataclass(slots=True)
class StateMoves:
    moves: list[Move] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    waits: bool = False  # time can pass in the state (nothing is taken at once)


def success(instruction: Instruction) -> dict[str, Any]:
    """A scripted reply that succeeds: an empty 200 for HTTP, an empty result otherwise."""
    return {"status": 200, "body": {}} if instruction.kind == "http" else {"result": {}}


FAILURE = {"error": "scripted failure", "class": "error"}  # not retryable: fails for good
NOT_YET = {"error": "scripted: not yet", "class": "5xx"}  # a poll attempt that does not hold


def all_succeed(task: TaskDef) -> dict[str, dict[str, Any]]:
    """Replies for every call of the task: each instruction succeeds, no poll holds."""
    replies: dict[str, dict[str, Any]] = {}
    for state in task.states:
        for instruction in state.instructions:
            if instructions.has_side_effects(instruction.kind):
                replies[f"{state.name}/{instruction.name}"] = success(instruction)
        replies.update(_poll_keys(state, None))
    return replies


def moves_of(task: TaskDef, state: State, deadline_left: timedelta | None,
             watched: frozenset[str] = frozenset()) -> StateMoves:
    """Every way out of ``state`` (entered with ``deadline_left`` before the run's
    deadline, None: no deadline), and every way it can get stuck. ``watched``: events that
    states passed through at this same virtual moment waited for; one of those cannot be
    found already buffered here (it would have moved the run there)."""
    found = StateMoves()
    ok: list[tuple[str, dict[str, Any]]] = []
    for instruction in state.instructions:
        if not instructions.has_side_effects(instruction.kind):
            continue
        key = f"{state.name}/{instruction.name}"
        found.moves.append(Move(
            how=f"instruction '{instruction.name}' fails for good",
            target=instruction.on_error, status=None if instruction.on_error else "failed",
            replies=(*ok, (key, FAILURE))))
        ok.append((key, success(instruction)))
    _race(task, state, deadline_left, tuple(ok), found, watched)
    return found


def _poll_keys(state: State, winner: int | None) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Replies for the state's polls: each one not yet, except ``winner`` which holds."""
    out = []
    for index, transition in enumerate(state.transitions):
        if isinstance(transition.condition, PollCondition):
            instruction = transition.condition.instruction
            out.append((f"{state.name}/{instruction.name}",
                        success(instruction) if index == winner else NOT_YET))
    return tuple(out)


def _race(task: TaskDef, state: State, deadline_left: timedelta | None,
          ok: tuple[tuple[str, dict[str, Any]], ...], found: StateMoves,
          watched: frozenset[str]) -> None:
    forced = _forced_at_once(state)
    found.waits = forced is None
    free_ones = state.transitions if forced is None else state.transitions[:forced]
    for index, transition in enumerate(free_ones):
        move = _free_move(state, index, transition, ok, at_once=forced is not None)
        if move is not None and forced is not None and move.event in watched:
            continue  # it would have been taken in an earlier state of this moment
        if move is not None:
            found.moves.append(replace(move, assumes=_whens_fail(state, index) + move.assumes))
    if forced is not None:
        transition = state.transitions[forced]
        found.moves.append(Move(how=f"'{transition.condition_kind}' to "
                                f"'{transition.target}' is taken at once",
                                target=transition.target, replies=ok + _poll_keys(state, None),
                                assumes=_whens_fail(state, forced)))
        return
    timer = _earliest_timer(task, state, deadline_left)
    if timer is not None:
        found.moves.append(Move(how=timer[0], target=timer[1], status=timer[2], after=timer[3],
                                replies=ok + _poll_keys(state, None),
                                assumes=_whens_fail(state, None)))
        return
    if not any(t.condition_kind == "wait" for t in state.transitions):
        found.stuck.append(_stuck(state, ok))


def events_waited(state: State) -> frozenset[str]:
    """The events ``state`` subscribes to."""
    return frozenset(e for t in state.transitions
                     if (e := getattr(t.condition, "event", None)) is not None)


def _whens_fail(state: State, index: int | None) -> tuple[str, ...]:
    """What a move assumes of the ``when``s that would win over it: every one declared
    before ``index`` (all of them for a timer, None) does not hold."""
    before = state.transitions if index is None else state.transitions[:index]
    return tuple(f"not ({t.condition.predicate})" for t in before
                 if t.condition_kind == "when")


def _forced_at_once(state: State) -> int | None:
    """The first transition fulfilled as soon as it is looked at, whatever the world does."""
    for index, transition in enumerate(state.transitions):
        condition = transition.condition
        if transition.condition_kind == "always" or (
                transition.condition_kind == "wait" and condition.duration is not None
                and condition.duration <= timedelta(0)):
            return index
    return None


def _free_move(state: State, index: int, transition: Transition,
               ok: tuple[tuple[str, dict[str, Any]], ...], *, at_once: bool) -> Move | None:
    """The move where this transition's condition is fulfilled first, if the world (an
    event, a poll's answer, the data) can make it so."""
    kind, condition, target = transition.condition_kind, transition.condition, transition.target
    replies = ok + _poll_keys(state, None)
    if kind == "when":
        return Move(how=f"'{condition.predicate}' holds", target=target, replies=replies,
                    assumes=(f"{condition.predicate}",))
    if kind == "poll":
        if at_once:
            return None  # a poll attempts only once nothing else is fulfilled
        return Move(how=f"poll for '{target}' succeeds first", target=target,
                    replies=ok + _poll_keys(state, index), assumes=(condition.until,))
    if kind == "wait":
        if condition.duration is not None:
            return None  # a timer: see _earliest_timer
        return Move(how=f"wait until '{condition.until}' comes first", target=target,
                    replies=replies, assumes=(f"{condition.until} renders to a time now",))
    event = getattr(condition, "event", None) or kind
    match = getattr(condition, "match", None)
    if _shadowed(state, index, event):
        return None
    after = timedelta(0) if at_once else EVENT_AFTER_ENTRY
    return Move(how=f"event '{event}' arrives first", target=target, replies=replies,
                event=event, event_after=after, after=after, assumes=(match,) if match else ())


def _shadowed(state: State, index: int, event: str) -> bool:
    """Whether an earlier transition takes every event of this name first: one subscribed
    to it with the same correlation and no ``match`` (ties go to the earlier-declared)."""
    mine = state.transitions[index].condition
    for transition in state.transitions[:index]:
        other = transition.condition
        if (getattr(other, "event", None) == event and not getattr(other, "match", None)
                and getattr(other, "correlate", None) == getattr(mine, "correlate", None)):
            return True
    return False


def _earliest_timer(task: TaskDef, state: State, deadline_left: timedelta | None
                    ) -> tuple[str, str | None, str | None, timedelta] | None:
    """(how, target, status, after) of the timer that fires first, if any."""
    timers: list[tuple[timedelta, int, str, str | None, str | None]] = []
    if deadline_left is not None:
        timers.append((max(deadline_left, timedelta(0)), 0, "the run's deadline passes",
                       None, "timed_out"))
    for index, transition in enumerate(state.transitions):
        condition = transition.condition
        if transition.condition_kind == "wait" and condition.duration is not None:
            how = f"wait {format_duration(condition.duration)} to '{transition.target}' fires"
            timers.append((condition.duration, 1 + index, how, transition.target, None))
        if isinstance(condition, PollCondition):
            gives_up = _poll_gives_up(condition)
            if gives_up is not None:
                timers.append((gives_up, 10**6 + index, f"poll for '{transition.target}' "
                               "gives up", condition.on_error,
                               None if condition.on_error else "failed"))
    timeout = task.timeout_for(state)
    if timeout is not None:
        timers.append((timeout, 10**6 - 1, f"state timeout {format_duration(timeout)} passes",
                       state.on_timeout, None if state.on_timeout else "timed_out"))
    if not timers:
        return None
    at, _, how, target, status = min(timers, key=lambda t: (t[0], t[1]))
    return how, target, status, at


def _poll_gives_up(condition: PollCondition) -> timedelta | None:
    """When a poll that never holds gives up (attempts at the interval, without jitter)."""
    if condition.max_attempts is None and condition.max_duration is None:
        return None
    at, attempts = 0.0, 1
    backoff = condition.backoff
    while attempts < _MAX_POLL_STEPS:
        if condition.max_attempts is not None and attempts >= condition.max_attempts:
            break
        if condition.max_duration is not None and at >= condition.max_duration.total_seconds():
            break
        if backoff is not None and backoff.jitter:
            backoff = replace(backoff, jitter=False)
        at += poll_interval(condition.every, backoff, attempts)
        attempts += 1
    return timedelta(seconds=at)


def _stuck(state: State, ok: tuple[tuple[str, dict[str, Any]], ...]) -> Stuck:
    kinds = {t.condition_kind for t in state.transitions}
    assumes = tuple(f"not ({t.condition.predicate})" for t in state.transitions
                    if t.condition_kind == "when")
    replies = ok + _poll_keys(state, None)
    waiting = sorted(kinds - {"when", "poll", "wait", "always"})
    if waiting:
        events = sorted({getattr(t.condition, "event", t.condition_kind)
                         for t in state.transitions if t.condition_kind in waiting})
        return Stuck("unsent_event", f"state '{state.name}' waits for event(s) "
                     f"{', '.join(events)} with no timeout, wait or deadline: a run nobody "
                     "sends one to waits forever", replies, assumes)
    if "poll" in kinds:
        return Stuck("endless_poll", f"state '{state.name}' polls with no max_attempts, "
                     "max_duration, timeout or deadline: a poll that never holds never ends",
                     replies, assumes)
    return Stuck("dead_end", f"in state '{state.name}' nothing can ever fire once "
                 f"{' and '.join(assumes) or 'its conditions fail'}: no timer, no event",
                 replies, assumes)
