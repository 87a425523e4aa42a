"""Worker incidents: a step stuck far past its budget, a worker recycled for its memory.

Each worker process tracks the steps its pool is running in memory (``step_began`` and
``step_ended`` per thread, no query); its watchdog thread (``taskapp.watchdog``) writes an
incident row only when the oldest of them has run longer than ``STUCK_STEP_SECONDS``, and
removes it when that step ends. A worker whose peak memory passed django-q2's ``max_rss``
notes its coming recycle once (``worker_recycle_due``). A healthy cluster therefore writes
nothing here; ``GET /api/health/`` reads the rows through ``taskapp.selectors``.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from engine.forksafe import fork_safe_dict
from taskapp import models
from taskapp.conf import conf

log = logging.getLogger("async_states.workers")

# Recycle notes older than this are dropped when a new one is written.
_FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class CurrentStep:
    run_id: str
    began_at: datetime
    began: float  # time.monotonic()


# The steps in flight in this process, by thread (``taskapp.steps``: a pool of them).
_current: dict[int, CurrentStep] = {}
# Whether this process noted its recycle already (a forked worker notes its own).
_recycle_noted: dict[str, bool] = fork_safe_dict()


def worker_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def step_began(run_id: object) -> None:
    """This thread now runs a step of ``run_id`` (the watchdog starts on first use)."""
    _current[threading.get_ident()] = CurrentStep(str(run_id), conf.clock.now(),
                                                  time.monotonic())
    from taskapp import watchdog

    watchdog.ensure_started()


def step_ended() -> None:
    _current.pop(threading.get_ident(), None)


def current_step() -> CurrentStep | None:
    """The oldest step in flight in this process, if any."""
    steps = list(_current.values())  # a copy: pool threads add and remove meanwhile
    return min(steps, key=lambda step: step.began) if steps else None


def steps_in_flight() -> int:
    return len(_current)


def worker_stuck(*, owner: str, step: CurrentStep) -> None:
    """Record that ``owner`` has been running ``step`` for longer than allowed."""
    models.WorkerIncident.objects.update_or_create(
        owner=owner, kind="stuck",
        defaults={"run_id": step.run_id, "since": step.began_at, "rss_mib": _peak_mib(),
                  "noted_at": conf.clock.now()},
    )


def worker_unstuck(*, owner: str) -> None:
    """The step ``owner`` was stuck in has ended after all."""
    models.WorkerIncident.objects.filter(owner=owner, kind="stuck").delete()


def worker_recycle_due() -> bool:
    """After a task: note (once per process) that this worker's peak resident size passed
    django-q2's ``max_rss``, so django-q2 is about to replace it. True when it did."""
    limit_kib = settings.Q_CLUSTER.get("max_rss")
    if not limit_kib or _recycle_noted:
        return False
    if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < limit_kib:
        return False
    _recycle_noted["noted"] = True
    log.warning("worker.recycle_due owner=%s peak_rss_mib=%.0f max_rss_mib=%.0f",
                worker_owner(), _peak_mib(), limit_kib / 1024)
    now = conf.clock.now()
    models.WorkerIncident.objects.filter(kind="recycled", noted_at__lt=now - _FORGET_AFTER
                                         ).delete()
    models.WorkerIncident.objects.update_or_create(
        owner=worker_owner(), kind="recycled",
        defaults={"since": now, "rss_mib": _peak_mib(), "noted_at": now},
    )
    models.WorkerIncident.objects.filter(owner=worker_owner(), kind="stuck").delete()
    return True


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


