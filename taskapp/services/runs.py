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
from django.db.models import F
from django.db.models.functions import Greatest

from engine import limits
from engine.errors import LeaseLost
from engine.forksafe import fork_safe_dict, fork_safe_local
from engine.language.model import TaskDef
from engine.runner import Runner, prepare_cancel, prepare_crash_failure, prepare_redrive
from engine.runs import ACTIVE, FINISHED, REDRIVABLE, StepOutcome, in_order
from taskapp import dbpool, dispatch, liveness, models, signals
from taskapp.conf import conf
from taskapp.isolation import isolation
from taskapp.selectors import definition_of, snapshot_of
from taskapp.services import sql, workers
from taskapp.services.errors import (
    InputInvalid,
    InputTooLarge,
    RedriveNeedsState,
    RunConflict,
    RunNotFound,
    TaskNotFound,
    UnknownRedriveState,
    ValueUnstorable,
)
from taskapp.services.store import DjangoRunStore
from taskapp.services.wakeups import backstop

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
        InputTooLarge: ``input`` is over ``MAX_INPUT_BYTES`` as JSON.
        InputInvalid: ``input`` fails the task's ``input_schema``.
        ValueUnstorable: ``input`` holds a value the database cannot store.
    """
    if idempotency_key:
        existing = models.Run.objects.filter(task_name=task, idempotency_key=idempotency_key)
        if found := existing.first():
            return found, False
    definition = _definition(task, version)
    payload = input or {}
    ValueUnstorable.refuse("input", payload)
    _check_input_size(task, payload)
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


def _check_input_size(task: str, payload: dict[str, Any]) -> None:
    try:
        limits.check_size(payload, what=f"the input of a run of task '{task}'",
                          limit=int(conf.MAX_INPUT_BYTES), setting="MAX_INPUT_BYTES")
    except limits.SizeLimitExceeded as exc:
        raise InputTooLarge("input", exc.what, exc.size, exc.limit, exc.setting) from None


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

_local = fork_safe_local()


def _worker_id() -> str:
    """Who holds a lease: the cluster (``<cluster>/``, so a dead cluster's leases can be
    found, see ``taskapp.liveness``), host, process and thread, unique while the worker
    lives. The host is cut to 40 characters to fit the column."""
    if not hasattr(_local, "id"):
        _local.id = (f"{liveness.lease_prefix()}{socket.gethostname()[:40]}:{os.getpid()}:"
                     f"{uuid.uuid4().hex[:8]}")
    return f"{_local.id}:{threading.get_ident()}"


_pools: dict[str, ThreadPoolExecutor] = fork_safe_dict()  # threads do not survive a fork
_pools_lock = threading.Lock()


def _runner(store: DjangoRunStore) -> Runner:
    """A runner for one step; the bounded condition pool is one per worker process (shared
    by its step threads), made on first use after the fork."""
    if "conditions" not in _pools:
        with _pools_lock:
            if "conditions" not in _pools:
                _pools["conditions"] = ThreadPoolExecutor(
                    max_workers=int(conf.CONDITION_THREADS), thread_name_prefix="conditions")
    return Runner(store=store, clock=conf.clock, pool=_pools["conditions"],
                  settings=conf.engine_settings())


def _claim(run_id: object, owner: str) -> models.Run | None:
    """Take the run's lease if it is active, due to start, and nobody holds it."""
    now = conf.clock.now()
    expires = now + timedelta(seconds=conf.LEASE_SECONDS)
    with transaction.atomic():
        return sql.claim_run(run_id=run_id, owner=owner, now=now, expires=expires,
                             statuses=_ACTIVE)


def run_advance(*, run_id: object) -> StepOutcome | None:
    """Advance one run as far as it goes now (one *step*); None when another worker holds it
    or it has nothing to do. Safe to call any number of times (django-q2 may redeliver)."""
    owner = _worker_id()
    # Waiting for a suspect run (taskapp.isolation), a step thread lends its pooled database
    # connection: the steps it waits for need connections to end.
    with isolation.shared(waiting=dbpool.lent):
        row = _claim(run_id, owner)
        if row is None:
            return None
        store = DjangoRunStore(owner=owner, version=row.version, signal=row.signal,
                               fresh=row.entry == 0, lease_expires_at=row.lease_expires_at)
        if row.crashes > int(conf.MAX_STEP_CRASHES):
            return _fail_poisoned(row, store)
        if row.crashes > 1:  # its last step did not end cleanly: step it alone
            with isolation.upgrade(float(conf.SUSPECT_ALONE_SECONDS), waiting=dbpool.lent):
                return _tracked_step(run_id, row, store, owner)
        return _tracked_step(run_id, row, store, owner)


def _tracked_step(run_id: object, row: models.Run, store: DjangoRunStore,
                  owner: str) -> StepOutcome | None:
    """The step, known to the worker's watchdog while it runs."""
    workers.step_began(run_id)
    try:
        return _step(run_id, row, store, owner)
    finally:
        workers.step_ended()


def _step(run_id: object, row: models.Run, store: DjangoRunStore,
          owner: str) -> StepOutcome | None:
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
    except Exception as exc:
        # A bug or an outage mid-step: what was committed stays; give the run back so it is
        # retried after the backstop delay instead of when the lease runs out, then let
        # django-q2 record the failure too.
        log.exception("run.step_failed run=%s owner=%s", run_id, owner)
        _let_go(run_id, owner, crash_error=type(exc).__name__)
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


def _fail_poisoned(row: models.Run, store: DjangoRunStore) -> StepOutcome:
    """End a run whose last ``MAX_STEP_CRASHES`` steps all crashed, instead of handing it
    to one more worker to crash (or hang) in turn. The failure is an ``error`` transition
    with code ``step_crashes``."""
    snapshot = snapshot_of(row)
    limit = int(conf.MAX_STEP_CRASHES)
    record = prepare_crash_failure(snapshot, crashes=row.crashes - 1, limit=limit,
                                   last_error=row.crash_error, now=conf.clock.now())
    log.error("run.poisoned run=%s state=%s crashes=%s last_error=%s", row.pk, row.state,
              row.crashes - 1, row.crash_error or "-")
    try:
        with transaction.atomic():
            store.commit(snapshot, transitions=[record], subscriptions=(), release=True)
            _release_finished(row.pk, store)
    except LeaseLost:
        return None
    return StepOutcome(None, True, 1)


def _release_finished(run_id: object, store: DjangoRunStore) -> None:
    """Take every claim off a run that just finished (a release refused because an event
    came meanwhile leaves the lease on it: nothing is left to look at)."""
    models.Run.objects.filter(id=run_id, version=store.version).update(
        lease_owner="", lease_expires_at=None, wake_at=None, claimed_at=None, crashes=0,
        crash_error="")


def _let_go(run_id: object, owner: str, crash_error: str = "",
            at: datetime | None = None) -> None:
    """Give the run back after a step that failed unexpectedly (its crash count stays), or
    that a fenced cluster must not take further (``at``: when to look again; the claim's
    crash count is taken back, since the run did nothing wrong)."""
    fields: dict[str, object] = {"crashes": Greatest(F("crashes") - 1, 0)} if at else {}
    try:
        models.Run.objects.filter(id=run_id, lease_owner=owner).update(
            lease_owner="", lease_expires_at=None, wake_at=at or backstop(conf.clock.now()),
            claimed_at=None, crash_error=crash_error[:200], **fields)
    except Exception:  # the database itself may be what failed: the lease will expire
        log.exception("run.release_failed run=%s", run_id)


# ---------------------------------------------------------------------------- control


# A compare-and-swap that loses to a step's commit is tried again with the new version; a
# step commits at most a few times per instruction, so three tries nearly always land.
_CANCEL_TRIES = 3


def run_cancel(*, run_id: object) -> models.Run:
    """Stop a run now: it ends cancelled in this call, with its ``cancel`` transition,
    whatever its step is doing.

    The end is one compare-and-swap on the run's version that also takes the lease away:
    a step still in flight (stuck in a far end, spinning, or on a dead worker) is refused
    with ``LeaseLost`` when it next commits or renews, and writes nothing more. Should
    the step win every try (it commits between our read and our write), the request is
    recorded instead and the step ends the run at its next move.

    Raises:
        RunNotFound, RunConflict: the run does not exist or has already finished.
    """
    for _ in range(_CANCEL_TRIES):
        run = _get(run_id)
        if run.status not in _ACTIVE:
            raise RunConflict(run.id, run.status, "cancel", _ACTIVE)
        if _cancel_now(run):
            run.refresh_from_db()
            return run
    return _request_cancel(run_id)


def _cancel_now(run: models.Run) -> bool:
    """Cancel ``run`` as read; False when it changed meanwhile (nothing written)."""
    snapshot = snapshot_of(run)
    record = prepare_cancel(snapshot, conf.clock.now())
    store = DjangoRunStore(owner=run.lease_owner, version=run.version, signal=run.signal)
    try:
        with transaction.atomic():
            store.commit(snapshot, transitions=[record], subscriptions=(), release=True)
            models.Run.objects.filter(id=run.id, version=store.version).update(
                cancel_requested=True, start_at=None, lease_owner="", lease_expires_at=None,
                wake_at=None, claimed_at=None, crashes=0, crash_error="")
    except LeaseLost:
        return False
    if run.lease_owner:
        log.warning("run.cancelled_in_flight run=%s owner=%s", run.id, run.lease_owner)
    return True


def _request_cancel(run_id: object) -> models.Run:
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

    A run that ended in a final state (``cancelled: failed``, say) has no state of its own
    to resume in, and which earlier state is the right one is the caller's call (the state
    it came from may be a clean-up step), so ``state`` is required there.

    Raises:
        RunNotFound; RunConflict: the run is active or succeeded; RedriveNeedsState: it
        ended in a final state and no ``state`` was given; UnknownRedriveState: ``state``
        is final or not a state of the task.
    """
    allowed = in_order(REDRIVABLE)
    run = _get(run_id)
    if run.status not in allowed:
        raise RunConflict(run.id, run.status, "redrive", allowed)
    snapshot = snapshot_of(run)
    target = _redrive_target(run, snapshot.task, state)
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
            deadline_at=_deadline(snapshot.task.deadline, now), claimed_at=None, crashes=0,
            crash_error="",
        )
        dispatch.advance_later(run.id)
    run.refresh_from_db()
    return run


def _redrive_target(run: models.Run, task: TaskDef, state: str | None) -> str:
    """The state a redrive resumes in: ``state``, else the (non-final) one the run stopped in."""
    choices = [s.name for s in task.states if not s.is_final]
    if state is None and run.state in task.state_names and task.state(run.state).is_final:
        came_from = (run.transitions.filter(to_state=run.state).order_by("-seq")
                     .values_list("from_state", flat=True).first())
        raise RedriveNeedsState(run.id, run.status, run.state,
                                came_from if came_from in choices else None, choices)
    target = state or run.state
    if target not in choices:
        raise UnknownRedriveState(run.id, run.status, target,
                                  target in task.state_names, choices)
    return target


def _get(run_id: object) -> models.Run:
    try:
        return models.Run.objects.get(id=run_id)
    except (models.Run.DoesNotExist, ValidationError, ValueError, TypeError):
        raise RunNotFound(run_id) from None
