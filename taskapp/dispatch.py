"""The only module that talks to django-q2.

django-q2 swallows keyword arguments named like its options (``timeout``, ``group``, …),
reads its settings at import time, and delivers at least once (ORM broker) or at most once
(Redis broker). So only a run id goes through it, always after the enqueuing transaction
commits, and the engine never relies on it alone: every run also has a persisted ``wake_at``
that the timer thread re-fires.
"""

from __future__ import annotations

from django.db import transaction

from taskapp.conf import conf

ADVANCE = "taskapp.tasks.advance_run"


def advance_later(run_id: object) -> None:
    """Have a cluster worker advance the run, once the current transaction commits."""
    if conf.DISPATCH == "none":
        return
    transaction.on_commit(lambda: _enqueue(str(run_id)))


def _enqueue(run_id: str) -> None:
    from django_q.tasks import async_task

    async_task(ADVANCE, run_id, task_name=f"advance {run_id}")

