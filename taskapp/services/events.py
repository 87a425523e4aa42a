"""Sending events to runs: addressed by run id, or by name and correlation value."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from engine import limits
from engine.runs import ACTIVE
from engine.sources import EventDraft, PoisonMessage
from taskapp import dispatch, models
from taskapp.conf import conf
from taskapp.services.errors import EventTooLarge, RunConflict, RunNotFound, ValueUnstorable
from taskapp.services.wakeups import backstop

_ACTIVE = [str(s) for s in ACTIVE]


def event_send(
    *,
    name: str,
    payload: Any = None,
    key: str | None = None,
    run_id: object = None,
    correlation: str | None = None,
    ttl: float | None = None,
) -> tuple[models.Event, bool]:
    """Record an event and wake the runs it concerns.

    The event is kept until its TTL passes (and an addressed event until its run ends), so
    a run that reaches its subscribing state later still receives it. An event whose
    ``key`` was seen before is ignored: the first one is returned with ``False``.

    The event is committed *before* subscribers are looked up: a run that arms its
    subscription concurrently either sees the event when it checks, or is found here and
    signalled, never neither.

    Raises:
        EventTooLarge: ``payload`` is over ``MAX_EVENT_BYTES`` as JSON.
        RunNotFound: ``run_id`` names no run. RunConflict: that run has finished.
        ValueUnstorable: ``payload`` holds a value the database cannot store.
    """
    ValueUnstorable.refuse("data", payload)
    if key and (seen := models.Event.objects.filter(key=key).first()):
        if seen.woken_at is None:  # the first send stored it but never signalled: finish
            _wake_subscribers(seen)
        return seen, False
    _check_payload_size(name, payload)
    run = _addressed_run(run_id)
    now = conf.clock.now()
    lifetime = timedelta(seconds=ttl if ttl is not None else conf.EVENT_TTL_SECONDS)
    try:
        with transaction.atomic():
            event = models.Event.objects.create(
                name=name, key=key or None, run=run, payload=payload if payload is not None
                else {}, correlation=None if correlation is None else str(correlation),
                received_at=now, expires_at=now + lifetime,
            )
    except IntegrityError:
        if key:
            return models.Event.objects.get(key=key), False
        raise
    _wake_subscribers(event)
    return event, True


def events_from_broker(*, drafts: list[EventDraft]) -> list[bool]:
    """Store the events a broker message made (``engine.sources``), each with its id as the
    key: a redelivered message's events are found and not stored again. Returns, per event,
    whether it was new. Called by a listener before it acknowledges the message.

    Raises:
        PoisonMessage: the database refuses an event (too large once encoded, a value it
            cannot store): redelivering the message would not change that.
        DatabaseError: the database is away: the message must not be acknowledged.
    """
    created = []
    for draft in drafts:
        try:
            _event, new = event_send(name=draft.name, payload=draft.payload, key=draft.key,
                                     correlation=draft.correlation)
        except (EventTooLarge, ValueUnstorable) as exc:
            raise PoisonMessage(f"event '{draft.name}' refused: {exc}") from None
        created.append(new)
    return created


def events_rewake(*, now: datetime | None = None, grace_seconds: float = 2.0,
                  limit: int = 100) -> int:
    """Signal the subscribers of events stored more than ``grace_seconds`` ago whose wake-up
    never committed (``event_send`` commits the event, then the wake-up: the database can go
    away in between). Called by the timer; returns how many events it finished."""
    now = now or conf.clock.now()
    stale = list(models.Event.objects.filter(
        woken_at__isnull=True, received_at__lte=now - timedelta(seconds=grace_seconds),
    ).order_by("received_at")[:limit])
    for event in stale:
        _wake_subscribers(event)
    return len(stale)


def _check_payload_size(name: str, payload: Any) -> None:
    try:
        limits.check_size(payload, what=f"the payload of event '{name}'",
                          limit=int(conf.MAX_EVENT_BYTES), setting="MAX_EVENT_BYTES")
    except limits.SizeLimitExceeded as exc:
        raise EventTooLarge("payload", exc.what, exc.size, exc.limit, exc.setting) from None


def _addressed_run(run_id: object) -> models.Run | None:
    if run_id is None:
        return None
    run = models.Run.objects.filter(id=run_id).first()
    if run is None:
        raise RunNotFound(run_id)
    if run.status not in _ACTIVE:
        raise RunConflict(run.id, run.status, "send an event to", _ACTIVE)
    return run


def _wake_subscribers(event: models.Event) -> None:
    """Signal the runs the event concerns and mark it woken, in one transaction."""
    if event.run_id is not None:
        run_ids = [event.run_id]
    else:
        run_ids = list(
            models.Subscription.objects.filter(name=event.name, correlation=event.correlation)
            .values_list("run_id", flat=True).distinct()
        )
    now = conf.clock.now()
    with transaction.atomic():
        if run_ids:
            models.Run.objects.filter(id__in=run_ids, status__in=_ACTIVE).update(
                signal=F("signal") + 1, wake_at=backstop(now)
            )
            for run_id in run_ids:
                dispatch.advance_later(run_id)
        models.Event.objects.filter(pk=event.pk).update(woken_at=now)
    event.woken_at = now
