"""Control of runs from outside the loop: redrive."""

from __future__ import annotations

from datetime import datetime

from engine.clock import to_iso
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
    run.cursor = {"phase": "instructions", "index": 0, "attempt": 0, "retry_at": None,
                  "timeout_at": to_iso(now + timeout) if timeout is not None else None}
    run.metrics["redrives"] = run.metrics.get("redrives", 0) + 1
    return record
