"""The only module that talks to django-q2.

django-q2 swallows keyword arguments named like its options (``timeout``, ``group``, …),
reads its settings at import time, and delivers at least once (ORM broker) or at most once
(Redis broker). So only a run id goes through it, always after the enqueuing transaction
commits, and the engine never relies on it alone: every run also has a persisted ``wake_at``
that the timer thread re-fires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction

from engine.forksafe import fork_safe_dict
from taskapp.conf import conf

log = logging.getLogger("async_states.dispatch")

ADVANCE = "taskapp.tasks.advance_run"
ADVANCE_MANY = "taskapp.tasks.advance_runs"


def advance_later(run_id: object) -> None:
    """Have a cluster worker advance the run, once the current transaction commits.

    If the broker refuses (Redis down), the failure is logged and the run is left to its
    persisted ``wake_at``: the caller's change is committed already, and raising would turn
    a started run into a 500 that a client retries into a duplicate."""
    if conf.DISPATCH == "none":
        return
    transaction.on_commit(lambda: _left_to_timer_on_failure(_enqueue, str(run_id)))


def _left_to_timer_on_failure(enqueue: Callable[[Any], None], what: Any) -> None:
    """Enqueue ``what``; on any broker failure log it and leave it to the timer. Every run
    handed here has a persisted ``wake_at`` (a backstop ``REDISPATCH_SECONDS`` ahead at
    most), which the timer fires once the broker answers again."""
    try:
        enqueue(what)
    except Exception:  # the broker's errors have no common base (redis, ORM, ...)
        log.warning("dispatch.enqueue_failed runs=%s (left to their wake-ups)",
                    what if isinstance(what, str) else len(what), exc_info=True)


def queue_depth() -> int:
    """Tasks waiting in django-q2's queue (not yet taken by a worker)."""
    return int(_broker().queue_size() or 0)


def _enqueue(run_id: str) -> None:
    from django_q.tasks import async_task

    async_task(ADVANCE, run_id, task_name=f"advance {run_id}", broker=_broker())


def advance_many_later(run_ids: Sequence[object], batch: int) -> None:
    """Have cluster workers advance these runs, at most ``batch`` per queued task, once the
    current transaction commits. The runs are split into even batches so that every
    worker gets a share of a burst."""
    if conf.DISPATCH == "none" or not run_ids:
        return
    ids = [str(run_id) for run_id in run_ids]
    tasks = -(-len(ids) // max(1, batch))
    chunks = [ids[i::tasks] for i in range(tasks)]
    transaction.on_commit(
        lambda: [_left_to_timer_on_failure(_enqueue_many, chunk) for chunk in chunks])


def _enqueue_many(run_ids: list[str]) -> None:
    if len(run_ids) == 1:
        _enqueue(run_ids[0])
        return
    from django_q.tasks import async_task

    async_task(ADVANCE_MANY, run_ids, task_name=f"advance {len(run_ids)} runs",
               broker=_broker())


_brokers: dict[str, object] = fork_safe_dict()


def _broker():
    """This process's broker. django-q2's ``async_task`` makes a new one per call unless
    handed one, and a new Redis broker opens a new connection: 2.2 of the 5.5 ms a
    ``POST /api/runs/`` took. Dropped in a forked child (``engine.forksafe``), so a cluster
    worker never shares its parent's socket; the Redis client's pool is thread-safe."""
    from django_q.brokers import get_broker

    if "broker" not in _brokers:
        _brokers["broker"] = get_broker()
    return _brokers["broker"]


# ---------------------------------------------------------------------------- retention

PURGE = "taskapp.tasks.purge_runs"
PURGE_SCHEDULE = "async_states: purge runs"


def schedule_purge(minutes: int) -> None:
    """Have the cluster run ``purge_runs`` every ``minutes`` (0: never). django-q2's
    scheduler looks about twice a minute, which is plenty for a purge."""
    from django.utils import timezone
    from django_q.models import Schedule

    if minutes <= 0:
        Schedule.objects.filter(name=PURGE_SCHEDULE).delete()
        return
    Schedule.objects.update_or_create(
        name=PURGE_SCHEDULE,
        defaults={"func": PURGE, "schedule_type": Schedule.MINUTES, "minutes": minutes,
                  "repeats": -1, "next_run": timezone.now() + timedelta(minutes=minutes)},
    )


# ---------------------------------------------------------------------------- health


def broker_status() -> tuple[bool, str, int | None]:
    """Whether the broker answers, what it is, and how many tasks wait in it."""
    broker = None
    try:
        broker = _broker()  # the ORM broker reads the database as it is made
        return bool(broker.ping()), broker.info(), int(broker.queue_size())
    except Exception as exc:  # any failure of the broker means "not alive"; say which
        what = broker.info() if broker is not None else "the broker"
        return False, f"{what}: {type(exc).__name__}: {exc}", None
