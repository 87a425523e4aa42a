"""Firing due wake-ups: the engine's own timer, since django-q2 has no delayed tasks and its
scheduler wakes only about twice a minute.

Every cluster process runs a timer thread calling ``wakeups_fire``; several of them on
several hosts share the work: on PostgreSQL each takes due rows with ``SKIP LOCKED``, on
SQLite writes are serialised anyway. A fired wake-up is pushed ``REDISPATCH_SECONDS`` into
the future rather than cleared, so if the dispatched task is lost (the Redis broker is
at-most-once, a cluster may die) the run is fired again; a step that claims the run sets its
real next wake-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from taskapp import dispatch, models
from taskapp.conf import conf


def backstop(now: datetime) -> datetime:
    """The wake-up to persist for a run that was just dispatched: only if that dispatch is
    lost does the timer fire the run again. (Persisting ``now`` would make the timer
    dispatch it a second time before a worker claims it.)"""
    return now + timedelta(seconds=conf.REDISPATCH_SECONDS)


def wakeups_fire(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Dispatch runs whose wake-up is due, earliest first; returns their ids.

    At most ``limit``, and only as many as keep django-q2's queue under
    ``TIMER_MAX_QUEUE`` tasks (back-pressure): while the workers are behind, a run already
    in the queue would otherwise be dispatched again each time its backstop passed, and the
    backlog would feed itself. Due runs simply wait their turn, in wake-up order. Runs due
    together go out ``WAKE_BATCH`` to a task (``dispatch.advance_many_later``); a lone one
    goes as before, one run, one task.
    """
    now = now or conf.clock.now()
    later = backstop(now)
    # A plain read first: on SQLite every atomic block takes the write lock (IMMEDIATE
    # mode), and the timer polls many times a second while mostly nothing is due.
    if not models.Run.objects.filter(wake_at__lte=now).exists():
        return []
    batch = int(conf.WAKE_BATCH)
    if conf.DISPATCH == "queue":
        free = int(conf.TIMER_MAX_QUEUE) - dispatch.queue_depth()
        limit = min(limit, free * batch)
        if limit <= 0:
            return []
    with transaction.atomic():
        due = (
            models.Run.objects.select_for_update(skip_locked=True)
            .filter(wake_at__lte=now)
            .order_by("wake_at")
            .values_list("id", flat=True)[:limit]
        )
        ids = list(due)
        if ids:
            models.Run.objects.filter(id__in=ids, wake_at__lte=now).update(wake_at=later)
            dispatch.advance_many_later(ids, batch=batch)
    return [str(i) for i in ids]
