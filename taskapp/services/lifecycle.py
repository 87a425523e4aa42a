"""The lifecycle outbox: events written with their transitions, claimed, then deleted.

Why an outbox of its own rather than a cursor over the Transition rows: on PostgreSQL the
rows' ids come from a sequence and are not committed in their order (two workers commit at
once), so a cursor that moves past an id can skip a row committed after it; closing that gap
needs a transaction-id column or a wait, both on every transition. Outbox rows are written
only for runs that publish, in the transaction that commits their transitions (one bulk
INSERT, beside the Transition rows' own): a transition that is not committed has no event,
one that is has its event. ``bench/RESULTS.md`` has the cost.

A publisher (``taskapp.lifecycle``) claims a batch by moving its rows' ``available_at`` a
lease ahead (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so clusters take disjoint
batches; SQLite's writers take turns anyway), publishes, deletes what was delivered, and
moves what failed past the destination's back-off. A cluster killed mid-publish leaves its
claim to expire: the rows are published again, with the same event ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import transaction
from django.db.models import F

from engine import lifecycle
from engine.language.lifecycle_parser import parse_lifecycle
from engine.language.model import Lifecycle, TaskDef
from engine.runs import RunSnapshot
from taskapp import models
from taskapp.conf import conf


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed outbox row."""

    id: int
    destination: str
    event: dict[str, Any]


def destinations_of(task: TaskDef) -> tuple[str, ...]:
    """The destination keys a run of ``task`` publishes to: the task's own and the
    deployment's (``LIFECYCLE``), once each."""
    return _destinations(task.lifecycle, str(conf.LIFECYCLE))


@cache
def _destinations(own: Lifecycle | None, deployment: str) -> tuple[str, ...]:
    found = [d for d in (own, deployment_destination(deployment)) if d is not None]
    return tuple(dict.fromkeys(lifecycle.destination_key(d) for d in found))


@cache
def deployment_destination(text: str) -> Lifecycle | None:
    """The ``LIFECYCLE`` setting read as a ``lifecycle:`` mapping (None when it is empty or
    wrong: the ``taskapp.checks`` system check says why)."""
    found, _problems = parse_lifecycle(text, "ASYNC_STATES_LIFECYCLE")
    return found


def lifecycle_events_add(
    *, run: RunSnapshot, rows: Sequence[Mapping[str, Any]], destinations: Sequence[str]
) -> None:
    """Write the events of ``rows`` (the Transition rows' columns, as the store inserted
    them) for each destination, in the caller's transaction (the one committing them)."""
    facts = lifecycle.RunFacts(id=str(run.id), task=run.task.name, version=run.task.version,
                               status=run.status, error=run.error)
    events = lifecycle.events_of(facts, [_row(t) for t in rows], str(conf.LIFECYCLE_SOURCE))
    now = conf.clock.now()
    models.LifecycleEvent.objects.bulk_create([
        models.LifecycleEvent(run_id=run.id, destination=d, event=e, created_at=now,
                              available_at=now)
        for d in destinations for e in events
    ])


def _row(t: Mapping[str, Any]) -> lifecycle.Row:
    return lifecycle.Row(seq=t["seq"], from_state=t["from_state"], to_state=t["to_state"],
                         trigger=t["trigger"], at=t["at"], entry=t["entry"],
                         time_in_state=t["time_in_state"])


def lifecycle_claim(
    *, limit: int, lease: timedelta, skip: Iterable[str] = ()
) -> list[Claimed]:
    """Take up to ``limit`` available events, oldest first, for ``lease`` (none of a
    destination in ``skip``: it is backing off)."""
    now = conf.clock.now()
    with transaction.atomic():
        rows = (models.LifecycleEvent.objects.select_for_update(skip_locked=True)
                .filter(available_at__lte=now).exclude(destination__in=list(skip))
                .order_by("id").values_list("id", "destination", "event")[:limit])
        claimed = [Claimed(*row) for row in rows]
        if claimed:
            models.LifecycleEvent.objects.filter(id__in=[c.id for c in claimed]).update(
                available_at=now + lease)
    return claimed


def lifecycle_delivered(*, ids: Sequence[int]) -> None:
    """Forget events their destination has."""
    if ids:
        models.LifecycleEvent.objects.filter(id__in=ids).delete()


def lifecycle_retry_later(*, ids: Sequence[int], at: datetime, error: str) -> None:
    """Give claimed events back, available again at ``at``; ``error`` says why the first of
    them failed (shown by the health check: it names a connection, never a URL), or is empty
    when none was tried (the batch ran out of time)."""
    if not ids:
        return
    if not error:
        models.LifecycleEvent.objects.filter(id__in=ids).update(available_at=at)
        return
    models.LifecycleEvent.objects.filter(id__in=ids).update(available_at=at,
                                                            last_error=error[:2000])
    # Only the first was attempted; the rest waited behind it.
    models.LifecycleEvent.objects.filter(id=ids[0]).update(attempts=F("attempts") + 1)
