"""Control of runs from outside the loop: redrive, cancel, and failing a poison run.

Cancel and the poison-run failure are decided here without running a step: the run's
holder may be stuck, dead or busy, and neither may wait for its cooperation. ``taskapp``
commits what these return in one compare-and-swap on the run's version, which also takes
the lease away, so a step still in flight is refused (``LeaseLost``) when it commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.cursor import RunCursor
from engine.errors import RunErrorCode
from engine.runs import RunSnapshot, RunStatus, TransitionRecord, Trigger


def prepare_redrive(run: RunSnapshot, target: str, now: datetime) -> TransitionRecord:
    """Put a failed, timed-out or cancelled run back into ``target`` (re-running its
    instructions), keeping its data. Returns the transition to commit with it.

    Raises:
        KeyError: ``target`` is not a state of the run's definition.
    """
    state = run.task.state(target)
    record = TransitionRecord(
        from_state=run.state, to_state=target, trigger=Trigger.REDRIVE, at=now,
        detail={"previous_status": str(run.status), "previous_error": run.error},
        entry=run.entry + 1,
    )
    run.state, run.entry, run.state_entered_at = target, run.entry + 1, now
    run.status, run.error, run.finished_at = RunStatus.RUNNING, None, None
    timeout = run.task.timeout_for(state)
    run.cursor = RunCursor.entering(now + timeout if timeout is not None else None)
    run.metrics["redrives"] = run.metrics.get("redrives", 0) + 1
    return record


def prepare_cancel(run: RunSnapshot, now: datetime) -> TransitionRecord:
    """End an active run as cancelled, as the step would (same error, same history row).
    Returns the transition to commit with it."""
    return _finish(run, RunStatus.CANCELLED, Trigger.CANCEL,
                   {"code": RunErrorCode.CANCELLED, "message": "cancelled on request"}, now)


def prepare_crash_failure(
    run: RunSnapshot, *, crashes: int, limit: int, last_error: str, now: datetime
) -> TransitionRecord:
    """Fail a run whose last ``crashes`` steps all began and never ended cleanly.

    ``last_error`` is the type of the last unexpected exception, when one was seen (a
    worker that was killed leaves none). Returns the transition to commit with it.
    """
    where = f"in state '{run.state}'" if run.state else "before its start state"
    seen = f"; the last error seen was {last_error}" if last_error else ""
    error = {
        "code": RunErrorCode.STEP_CRASHES, "crashes": crashes, "limit": limit,
        "message": f"{crashes} steps in a row {where} began and never ended cleanly (a worker "
        "died or was killed, ran past its lease, or raised an unexpected error)"
        f"{seen}; the limit is MAX_STEP_CRASHES={limit}. Fix the cause, then redrive the run.",
    }
    if last_error:
        error["last_error"] = last_error
    return _finish(run, RunStatus.FAILED, Trigger.ERROR, error, now)


def _finish(
    run: RunSnapshot, status: RunStatus, trigger: Trigger, error: dict[str, Any],
    now: datetime,
) -> TransitionRecord:
    """End ``run`` outside any final state, with the accounting ``Step`` does."""
    spent = 0.0
    if run.state is not None and run.state_entered_at is not None:
        spent = max((now - run.state_entered_at).total_seconds(), 0.0)
        per_state = run.metrics.setdefault("time_in_state", {})
        per_state[run.state] = round(per_state.get(run.state, 0.0) + spent, 6)
        run.metrics["transitions"] = run.metrics.get("transitions", 0) + 1
    run.status, run.cursor = status, RunCursor.empty()
    run.error = dict(error, state=run.state)
    run.finished_at = now
    run.metrics["duration"] = round((now - run.created_at).total_seconds(), 6)
    return TransitionRecord(
        from_state=run.state, to_state=None, trigger=trigger, at=now,
        time_in_state=spent, detail=run.error, entry=run.entry,
    )
