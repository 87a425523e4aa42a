"""Starting, advancing, cancelling and redriving runs."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from engine.errors import LeaseLost
from engine.runner import Runner, prepare_redrive
from engine.runs import ACTIVE, FINISHED, StepOutcome
from taskapp import dispatch, liveness, models, signals
from taskapp.conf import conf
from taskapp.services.errors import InputInvalid, RunConflict, RunNotFound, TaskNotFound
from taskapp.services.wakeups import backstop
from taskapp.store import DjangoRunStore, definition_of, snapshot_of

log = logging.getLogger("async_states.runs")

_ACTIVE = [str(s) for s in ACTIVE]
_FINISHED = [str(s) for s in FINISHED]


# ---------------------------------------------------------------------------- start


def run_start(
    *,
    task: str,
    input: dict[str, Any] | None = None,
    version: int | None = None,
    idempotency_key: str | None = None,
    start_at: datetime | None = None,
) -> tuple[models.Run, bool]:
    """Create a run of ``task`` (its latest version unless ``version``) and schedule it.

    Returns the run and whether it was created: the same ``idempotency_key`` for the same
    task returns the existing run instead of starting a second one.

    Raises:
        TaskNotFound: no such task or version is loaded.
        InputInvalid: ``input`` fails the task's ``input_schema``.
    """
    if idempotency_key:
        existing = models.Run.objects.filter(task_name=task, idempotency_key=idempotency_key)
        if found := existing.first():
            return found, False
    definition = _definition(task, version)
    payload = input or {}
    _check_input(definition, payload)
    now = conf.clock.now()
    parsed = definition_of(definition.pk)
    scheduled = start_at is not None and start_at > now
    wake = start_at if scheduled else backstop(now)
    try:
        with transaction.atomic():
            run = models.Run.objects.create(
                definition=definition, task_name=definition.name, task_version=definition.version,
                input=payload, idempotency_key=idempotency_key or None, start_at=start_at,
                deadline_at=_deadline(parsed.deadline, start_at if scheduled else now),
                wake_at=wake,
            )
            if not scheduled:
                dispatch.advance_later(run.pk)
            signals.announce_row(run)
    except IntegrityError:
        if idempotency_key:  # a concurrent start with the same key won the race
            return models.Run.objects.get(task_name=task, idempotency_key=idempotency_key), False
        raise
    return run, True


def _deadline(deadline: timedelta | None, start: datetime) -> datetime | None:
    return start + deadline if deadline is not None else None


def _definition(task: str, version: int | None) -> models.TaskDefinition:
    rows = models.TaskDefinition.objects.filter(name=task)
    row = rows.filter(version=version).first() if version else rows.order_by("-version").first()
    if row is None:
        raise TaskNotFound(task, version)
    return row


def _check_input(definition: models.TaskDefinition, payload: dict[str, Any]) -> None:
    schema = definition_of(definition.pk).input_schema
    if not schema:
        return
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        raise InputInvalid(definition.name, [
            {"path": "/".join(str(p) for p in e.absolute_path), "message": e.message}
            for e in errors
        ])


# ---------------------------------------------------------------------------- advance

_local = threading.local()


def _worker_id() -> str:
    """Who holds a lease: the cluster (``<cluster>/``, so a dead cluster's leases can be
    found, see ``taskapp.liveness``), host, process and thread, unique while the worker
    lives. The host is cut to 40 characters to fit the column."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid = os.getpid()
        _local.id = (f"{liveness.lease_prefix()}{socket.gethostname()[:40]}:{os.getpid()}:"
                     f"{uuid.uuid4().hex[:8]}")
    return f"{_local.id}:{threading.get_ident()}"


_pools: dict[int, ThreadPoolExecutor] = {}


def _runner(store: DjangoRunStore) -> Runner:
    """A runner for one step; the bounded condition pool is one per worker process, made
    after fork (threads do not survive a fork)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools.clear()
        _pools[pid] = ThreadPoolExecutor(max_workers=int(conf.CONDITION_THREADS),
                                         thread_name_prefix="conditions")
    return Runner(store=store, clock=conf.clock, pool=_pools[pid],
                  settings=conf.engine_settings())


def _claim(run_id: object, owner: str) -> models.Run | None:
    """Take the run's lease if it is active, due to start, and nobody holds it."""
    now = conf.clock.now()
    expires = now + timedelta(seconds=conf.LEASE_SECONDS)
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    started = Q(start_at__isnull=True) | Q(start_at__lte=now)
    with transaction.atomic():
        claimed = models.Run.objects.filter(free & started, id=run_id, status__in=_ACTIVE).update(
            lease_owner=owner, lease_expires_at=expires, wake_at=expires,
            version=F("version") + 1,
        )
    if not claimed:
        return None
    return models.Run.objects.get(id=run_id)


def run_advance(*, run_id: object) -> StepOutcome | None:
    """Advance one run as far as it goes now (one *step*); None when another worker holds it
    or it has nothing to do. Safe to call any number of times (django-q2 may redeliver)."""
    owner = _worker_id()
    row = _claim(run_id, owner)
    if row is None:
        return None
    store = DjangoRunStore(owner=owner, version=row.version, signal=row.signal,
                           fresh=row.entry == 0, lease_expires_at=row.lease_expires_at)
    runner = _runner(store)
    try:
        while True:
            outcome = runner.advance(snapshot_of(row))
            if outcome.released:
                break
            row = models.Run.objects.get(id=run_id)  # an event arrived: look again
            store.signal = row.signal
    except LeaseLost:
        if liveness.fenced():  # our cluster's heartbeat is late: let another cluster go on
            log.warning("run.fenced run=%s owner=%s", run_id, owner)
            _let_go(run_id, owner, at=conf.clock.now()
                    + timedelta(seconds=float(conf.CLUSTER_DEAD_SECONDS)))
        else:
            log.warning("run.lease_lost run=%s owner=%s", run_id, owner)
        return None
    except Exception:
        # A bug or an outage mid-step: what was committed stays; give the run back so it is
        # retried after the backstop delay instead of when the lease runs out, then let
        # django-q2 record the failure too.
        log.exception("run.step_failed run=%s owner=%s", run_id, owner)
        _let_go(run_id, owner)
        raise
    if outcome.wake_at is not None and outcome.wake_at <= conf.clock.now():
        dispatch.advance_later(run_id)  # the step yielded its budget; go on at once
    return outcome


def runs_advance(*, run_ids: Sequence[object]) -> int:
    """Advance each run in turn: a batch the timer dispatched as one queued task. Returns
    how many it stepped.

    One run's failing step does not stop the batch: ``run_advance`` has logged it and given
    the run back, and its backstop wake-up fires it again. After ``WAKE_BATCH_SECONDS`` the
    rest of the batch is queued again instead of held, so a batch of runs with slow
    instructions never keeps a worker for long, nor comes near django-q2's task timeout.
    """
    began = time.monotonic()
    for done, run_id in enumerate(run_ids):
        if done and time.monotonic() - began > conf.WAKE_BATCH_SECONDS:
            dispatch.advance_many_later(run_ids[done:], batch=int(conf.WAKE_BATCH))
            return done
        try:
            run_advance(run_id=run_id)
        except Exception:  # noqa: BLE001, S112 - logged by run_advance; the next run goes on
            continue
    return len(run_ids)


def _let_go(run_id: object, owner: str, at: datetime | None = None) -> None:
    try:
        models.Run.objects.filter(id=run_id, lease_owner=owner).update(
            lease_owner="", lease_expires_at=None, wake_at=at or backstop(conf.clock.now()))
    except Exception:  # the database itself may be what failed: the lease will expire
        log.exception("run.release_failed run=%s", run_id)


# ---------------------------------------------------------------------------- control


def run_cancel(*, run_id: object) -> models.Run:
    """Ask a run to stop. A waiting run is cancelled at once (by the next step, dispatched
    now); a run in the middle of a step is cancelled when that step ends.

    Raises:
        RunNotFound, RunConflict: the run does not exist or has already finished.
    """
    run = _get(run_id)
    updated = models.Run.objects.filter(id=run.id, status__in=_ACTIVE).update(
        cancel_requested=True, signal=F("signal") + 1, wake_at=backstop(conf.clock.now()),
        start_at=None, updated_at=conf.clock.now(),
    )
    if not updated:
        raise RunConflict(run.id, run.status, "cancel", _ACTIVE)
    dispatch.advance_later(run.id)
    run.refresh_from_db()
    signals.announce_row(run)
    return run


def run_redrive(*, run_id: object, state: str | None = None) -> models.Run:
    """Put a failed, timed-out or cancelled run back to work from the state where it
    stopped, or from ``state``, keeping its data. The redrive is a recorded transition.

    Raises:
        RunNotFound; RunConflict: the run is active or succeeded, or ``state`` is unknown.
    """
    allowed = ["failed", "timed_out", "cancelled"]
    run = _get(run_id)
    if run.status not in allowed:
        raise RunConflict(run.id, run.status, "redrive", allowed)
    snapshot = snapshot_of(run)
    target = state or run.state
    if target not in snapshot.task.state_names or snapshot.task.state(target).is_final:
        raise RunConflict(run.id, run.status, f"redrive to '{target}'",
                          [s.name for s in snapshot.task.states if not s.is_final])
    owner = _worker_id()
    now = conf.clock.now()
    record = prepare_redrive(snapshot, target, now)
    snapshot.cancel_requested = False
    with transaction.atomic():
        taken = models.Run.objects.filter(id=run.id, status=run.status, version=run.version)
        if not taken.update(lease_owner=owner, cancel_requested=False):
            raise RunConflict(run.id, run.status, "redrive (it changed meanwhile)", allowed)
        store = DjangoRunStore(owner=owner, version=run.version, signal=run.signal)
        store.commit(snapshot, transitions=[record])
        models.Run.objects.filter(id=run.id).update(
            lease_owner="", lease_expires_at=None, wake_at=backstop(now),
            deadline_at=_deadline(snapshot.task.deadline, now),
        )
        dispatch.advance_later(run.id)
    run.refresh_from_db()
    return run


def _get(run_id: object) -> models.Run:
    try:
        return models.Run.objects.get(id=run_id)
    except (models.Run.DoesNotExist, ValidationError, ValueError, TypeError):
        raise RunNotFound(run_id) from None
