"""Comparing a dry run with what the real cluster recorded for the same script: the same
path, data, attempt counts and poll records, and times within the timer's lag. Shared by the
end-to-end tests that hold the simulator to the engine."""

from __future__ import annotations

from datetime import datetime

from taskapp import models
from tests.e2e.conftest import path_of

# The timer's lag, and a worker's pick-up, on a loaded 2-core machine: real times may be
# this much later than the virtual ones.
LAG_SECONDS = 3.0


def route(far_end, path: str, replies: list[dict]) -> None:
    """The far end answers call n with reply n (the last repeats), as a script does."""
    def handler(n: int, request: dict) -> tuple[int, object, float]:
        reply = replies[min(n, len(replies)) - 1]
        return reply["status"], reply["body"], 0
    far_end.route(path, handler)


def attempts(run: models.Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in models.InstructionAttempt.objects.filter(run=run):
        counts[f"{a.state}/{a.instruction}"] = counts.get(f"{a.state}/{a.instruction}", 0) + 1
    return counts


def steady(value):
    """Data without what a real HTTP exchange adds that no script says: the server's headers
    and the time it took."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in ("headers", "elapsed_ms")}
    return value


def same_history(run: models.Run, dry, *, time_in_state: bool = True) -> None:
    assert (run.status, run.state) == (dry.status, dry.state)
    assert path_of(run) == dry.path()
    assert steady(run.data) == steady(dry.data)
    assert attempts(run) == dry.attempt_counts()
    real_polls = [(p.state, p.attempts, p.outcome) for p in models.PollRecord.objects.filter(
        run=run).order_by("entry", "transition_index")]
    assert real_polls == [(p.state, p.attempts, str(p.outcome)) for p in dry.polls]
    if time_in_state:
        real = models.Transition.objects.filter(run=run).order_by("seq")
        for mine, theirs in zip(real, dry.transitions, strict=True):
            assert theirs.time_in_state <= mine.time_in_state + 0.05
            assert mine.time_in_state - theirs.time_in_state < LAG_SECONDS




def same_details(run: models.Run, dry) -> None:
    """Beyond ``same_history``: each transition's condition, transition index, entry and
    detail; each attempt's place, number, outcome and error, in order and within the lag of
    its virtual time; each poll's last result and error; the run's error. What the world adds
    that no script says is compared by shape: a far end's headers and time (as ``steady``),
    an event's row id in the store, and the due time of a wait and the time a state timed
    out at (within the lag)."""
    real = list(models.Transition.objects.filter(run=run).order_by("seq"))
    assert [(t.condition_kind, t.transition_index, t.entry) for t in real] == [
        (t.condition_kind, t.transition_index, t.entry) for t in dry.transitions]
    for mine, theirs in zip(real, dry.transitions, strict=True):
        _same_detail(mine.detail, theirs.detail)
    tried = models.InstructionAttempt.objects.filter(run=run).order_by("started_at", "attempt")
    assert [(a.state, a.entry, a.instruction, a.kind, a.attempt, a.ok, a.error, a.error_class)
            for a in tried] == [(a.state, a.entry, a.instruction, a.kind, a.attempt, a.ok,
                                 a.error, a.error_class) for a in dry.attempts]
    start = real[0].at - dry.start  # the real clock's offset from the virtual one
    for mine, theirs in zip(tried, dry.attempts, strict=True):
        _within_lag(mine.started_at - start, theirs.started_at)
    polls = models.PollRecord.objects.filter(run=run).order_by("entry", "transition_index")
    assert [(steady(p.last_result), p.last_error) for p in polls] == [
        (steady(p.last_result), p.last_error) for p in dry.polls]
    assert bool(run.error) == bool(dry.error)
    _same_detail(run.error or {}, dry.error or {})


_TIMES = ("due", "timeout_at")  # absolute times: the real ones within the lag


def _same_detail(mine: dict, theirs: dict) -> None:
    assert _detail(mine) == _detail(theirs)
    assert ("event_id" in mine) == ("event_id" in theirs)
    for key in _TIMES:
        assert (key in mine) == (key in theirs), key
        if key in theirs:
            _within_lag(mine[key], theirs[key])


def _detail(detail: dict) -> dict:
    return {k: v for k, v in detail.items() if k not in ("event_id", *_TIMES)}


def _within_lag(real, virtual) -> None:
    real, virtual = (datetime.fromisoformat(t) if isinstance(t, str) else t
                     for t in (real, virtual))
    late = (real - virtual).total_seconds()
    assert -0.05 <= late < LAG_SECONDS, (real, virtual)


def same_times_from_start(run: models.Run, dry) -> None:
    """Times within the timer's lag when the script's events were sent at their times after
    the run was created: each transition's offset from then (an event comes at its own
    time, however late the state before it was entered), and, for each transition no event
    took, its time in state (a timer counts from its state's entry)."""
    real = models.Transition.objects.filter(run=run).order_by("seq")
    for mine, theirs in zip(real, dry.transitions, strict=True):
        offset, expected = (mine.at - run.created_at).total_seconds(), dry.offset(theirs.at)
        assert expected <= offset + 0.05, (mine.to_state, offset, expected)
        assert offset - expected < LAG_SECONDS, (mine.to_state, offset, expected)
        if mine.condition_kind != "subscribe":
            assert theirs.time_in_state <= mine.time_in_state + 0.05, mine.to_state
            assert mine.time_in_state - theirs.time_in_state < LAG_SECONDS, mine.to_state
