"""``RunStore`` on Django's ORM: how the engine's decisions become rows.

Every write is guarded by the lease this worker took (``lease_owner``) and the run's
``version`` (compare and swap): zero rows updated means another worker owns the run now,
and ``LeaseLost`` stops the step before it writes anything else. A run's new fields and its
history rows are committed in one transaction, with the lifecycle events of those rows when
the run publishes them (``services.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q

from engine.errors import LeaseLost
from engine.runs import (
    AttemptRecord,
    EventRecord,
    PollRecord,
    RunSnapshot,
    RunStatus,
    Subscription,
    TransitionRecord,
)
from taskapp import dbpool, models, signals
from taskapp.conf import conf
from taskapp.liveness import fenced
from taskapp.services import sql
from taskapp.services.lifecycle import destinations_of, lifecycle_events_add
from taskapp.services.wakeups import backstop


def run_fields(run: RunSnapshot) -> dict[str, object]:
    """The columns a commit writes from a snapshot. (``updated_at`` is set here: a queryset
    ``update`` bypasses ``auto_now``.)"""
    return {
        "updated_at": conf.clock.now(),
        "status": str(run.status),
        "state": run.state or "",
        "entry": run.entry,
        "state_entered_at": run.state_entered_at,
        "data": run.data,
        "cursor": run.cursor.to_json(),
        "error": run.error,
        "metrics": run.metrics,
        "finished_at": run.finished_at,
    }


class DjangoRunStore:
    """The store for one claimed run, held by ``owner`` at ``version``."""

    def __init__(
        self, *, owner: str, version: int, signal: int, fresh: bool = False,
        lease_expires_at: datetime | None = None,
    ):
        self.owner = owner
        self.version = version
        self.signal = signal
        self.lease_expires_at = lease_expires_at
        # A run that never entered a state has no history: its first row is seq 1, without
        # asking the database.
        self._seq: int | None = 0 if fresh else None
        self._written: dict[str, object] = {}  # the run's columns the last commit wrote

    def _guarded(self, run_id: str, fields: dict[str, object], **also: object) -> int:
        """The run's UPDATE, if this worker still holds it at the version it last wrote;
        returns the rows changed (0 or 1)."""
        return sql.update(models.Run, fields,
                          {"id": run_id, "lease_owner": self.owner, "version": self.version,
                           **also})

    def commit(
        self,
        run: RunSnapshot,
        *,
        transitions: Sequence[TransitionRecord] = (),
        attempts: Sequence[AttemptRecord] = (),
        polls: Sequence[PollRecord] = (),
        subscriptions: Sequence[Subscription] | None = None,
        consumed_events: Sequence[str] = (),
        release: bool = False,
        wake_at: datetime | None = None,
    ) -> bool:
        with transaction.atomic():
            released = self._update(run, release, wake_at)
            self.version += 1
            if transitions:
                rows = self._add_transitions(run.id, transitions)
                if destinations := destinations_of(run.task):
                    lifecycle_events_add(run=run, rows=rows, destinations=destinations)
            if attempts:
                sql.insert(models.InstructionAttempt, [_attempt_row(run.id, a) for a in attempts])
            for poll in polls:
                _save_poll(run.id, poll)
            if subscriptions is not None:
                _replace_subscriptions(run.id, subscriptions)
            if consumed_events:
                at = transitions[-1].at if transitions else conf.clock.now()
                models.EventConsumption.objects.bulk_create([
                    models.EventConsumption(event_id=int(e), run_id=run.id, at=at)
                    for e in consumed_events
                ])
            self._announce(run, transitions)
        return released or not release

    def _announce(self, run: RunSnapshot, transitions: Sequence[TransitionRecord]) -> None:
        """``run_changed`` after commit, from what this commit wrote (no query)."""
        written = self._written
        signals.announce(
            run_id=run.id, task_name=run.task.name, task_version=run.task.version,
            status=written["status"], state=written["state"], created_at=run.created_at,
            updated_at=written["updated_at"], finished_at=run.finished_at,
            transitions=signals.transition_dicts(transitions, self._seq or 0),
        )

    def _update(self, run: RunSnapshot, release: bool, wake_at: datetime | None) -> bool:
        """The guarded UPDATE of the run row; True when it also released the lease.

        Releasing needs the ``signal`` unchanged since the claim (no event or control
        request came meanwhile); when it moved, the run's fields are still committed — an
        event never aborts a step's work — but the lease is kept for another look.
        """
        # Every commit also extends the lease (and the crash backstop) at no extra cost.
        expires = conf.clock.now() + timedelta(seconds=conf.LEASE_SECONDS)
        fields = {"version": self.version + 1, **run_fields(run),
                  "lease_expires_at": expires, "wake_at": expires}
        if release:
            releasing = {**fields, **self._release_fields(run, wake_at)}
            if self._guarded(run.id, releasing, signal=self.signal):
                self._written = releasing
                return True
        if not self._guarded(run.id, fields):
            raise LeaseLost(run.id)
        self._written = fields
        self.lease_expires_at = expires
        return False

    @staticmethod
    def _release_fields(run: RunSnapshot, wake_at: datetime | None) -> dict[str, object]:
        now = conf.clock.now()
        if wake_at is not None and wake_at <= now:
            wake_at = backstop(now)  # the caller dispatches it at once (see run_advance)
        # Giving the run back is a step that ended cleanly: the crash count starts over.
        fields: dict[str, object] = {"lease_owner": "", "lease_expires_at": None,
                                     "wake_at": wake_at, "claimed_at": None, "crashes": 0,
                                     "crash_error": ""}
        if not run.status.finished:
            fields["status"] = str(RunStatus.WAITING)
        return fields

    def _add_transitions(
        self, run_id: str, records: Sequence[TransitionRecord]
    ) -> list[dict[str, Any]]:
        if self._seq is None:
            last = models.Transition.objects.filter(run_id=run_id).aggregate(m=Max("seq"))["m"]
            self._seq = last or 0
        rows = []
        for record in records:
            self._seq += 1
            rows.append({
                "run_id": run_id, "seq": self._seq, "from_state": record.from_state or "",
                "to_state": record.to_state or "", "trigger": str(record.trigger),
                "condition_kind": record.condition_kind,
                "transition_index": record.transition_index, "entry": record.entry,
                "at": record.at, "time_in_state": record.time_in_state,
                "detail": record.detail,
            })
        sql.insert(models.Transition, rows)
        return rows

    def renew_lease(self, run: RunSnapshot) -> None:
        """Extend the lease when less than half of it is left (commits extend it too, so
        this writes only after a long stretch without one). Called before every call out:
        a worker whose cluster's heartbeat is late stops here (``taskapp.liveness``)."""
        if fenced():
            raise LeaseLost(run.id)
        now, lease = conf.clock.now(), timedelta(seconds=conf.LEASE_SECONDS)
        if self.lease_expires_at is not None and self.lease_expires_at - now > lease / 2:
            return
        if not self._guarded(run.id, {"lease_expires_at": now + lease, "wake_at": now + lease}):
            raise LeaseLost(run.id)
        self.lease_expires_at = now + lease

    @contextmanager
    def outside(self) -> Iterator[None]:
        """A step thread's database connection goes back to its worker's pool while the
        call is out (``taskapp.dbpool``)."""
        with dbpool.lent():
            yield

    def events_for(self, run: RunSnapshot, subscription: Subscription) -> Sequence[EventRecord]:
        addressed = Q(run_id=run.id)
        if subscription.correlation is not None:
            addressed |= Q(run__isnull=True, correlation=subscription.correlation)
        rows = (
            models.Event.objects.filter(addressed, name=subscription.event,
                                        expires_at__gt=conf.clock.now())
            .exclude(consumptions__run_id=run.id)
            .order_by("received_at", "id")[:100]
        )
        return [
            EventRecord(id=str(e.id), name=e.name, payload=e.payload, received_at=e.received_at,
                        key=e.key, correlation=e.correlation)
            for e in rows
        ]


def _attempt_row(run_id: str, a: AttemptRecord) -> dict[str, object]:
    return {
        "run_id": run_id, "state": a.state, "entry": a.entry, "instruction": a.instruction,
        "kind": a.kind, "attempt": a.attempt, "ok": a.ok, "started_at": a.started_at,
        "duration": a.duration, "error": a.error, "error_class": a.error_class,
    }


def _save_poll(run_id: str, poll: PollRecord) -> None:
    models.PollRecord.objects.update_or_create(
        run_id=run_id, entry=poll.entry, transition_index=poll.transition_index,
        defaults={
            "state": poll.state, "target": poll.target, "attempts": poll.attempts,
            "first_at": poll.first_at, "last_at": poll.last_at, "outcome": poll.outcome,
            "last_result": poll.last_result, "last_error": poll.last_error,
        },
    )


def _replace_subscriptions(run_id: str, subscriptions: Sequence[Subscription]) -> None:
    models.Subscription.objects.filter(run_id=run_id).delete()
    if subscriptions:
        models.Subscription.objects.bulk_create([
            models.Subscription(run_id=run_id, name=s.event, correlation=s.correlation)
            for s in subscriptions
        ])
