"""``run_changed``: a run's row changed, sent once the change is committed.

Who listens is none of taskapp's business (the dashboard does, in ``dashboard/receivers.py``;
taskapp never imports it). The signal is sent from the places that write runs:

- ``DjangoRunStore.commit`` — every step's commits, and the redrive and the cancel (which
  commit through the store, so they need no send of their own);
- ``run_start`` (the run was created) and ``run_cancel`` when it could only record the
  request (the cancellation itself comes later through the store).

Keyword arguments: ``run_id`` (str), ``task_name``, ``task_version``, ``status``, ``state``,
``created_at``, ``updated_at`` (the value written to the row), ``finished_at`` and
``transitions`` — the transitions committed in that transaction, as small dicts (``seq``,
``from_state``, ``to_state``, ``trigger``, ``condition_kind``, ``at``, ``time_in_state``),
empty when none. All of it comes from what the writer already holds: no extra query.

It is sent in ``transaction.on_commit`` (a rolled-back write announces nothing) and with
``send_robust``: a failing receiver is logged, never raised into the engine, whose work is
already committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger("async_states.signals")

run_changed = Signal()


def announce(*, run_id: object, task_name: str, task_version: int, status: str, state: str,
             created_at: datetime, updated_at: datetime, finished_at: datetime | None,
             transitions: Sequence[dict[str, Any]] = ()) -> None:
    """Send ``run_changed`` when the current transaction commits (at once outside one)."""
    payload = {"run_id": str(run_id), "task_name": task_name, "task_version": task_version,
               "status": str(status), "state": state or "", "created_at": created_at,
               "updated_at": updated_at, "finished_at": finished_at,
               "transitions": list(transitions)}
    transaction.on_commit(lambda: _send(payload))


def announce_row(run: Any) -> None:
    """``announce`` for a ``Run`` row the caller holds (created or just refreshed)."""
    announce(run_id=run.pk, task_name=run.task_name, task_version=run.task_version,
             status=run.status, state=run.state, created_at=run.created_at,
             updated_at=run.updated_at, finished_at=run.finished_at)


def _send(payload: dict[str, Any]) -> None:
    for receiver, result in run_changed.send_robust(sender=None, **payload):
        if isinstance(result, Exception):
            log.error("run_changed receiver %r failed: %r", receiver, result)


def transition_dicts(records: Sequence[Any], last_seq: int) -> list[dict[str, Any]]:
    """The payload form of the ``TransitionRecord``s just written, numbered up to
    ``last_seq`` (the store's counter after the insert)."""
    first = last_seq - len(records) + 1
    return [
        {"seq": first + i, "from_state": r.from_state or "", "to_state": r.to_state or "",
         "trigger": str(r.trigger), "condition_kind": r.condition_kind, "at": r.at,
         "time_in_state": r.time_in_state}
        for i, r in enumerate(records)
    ]
