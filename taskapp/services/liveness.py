"""Taking over the runs of a cluster that died, within seconds instead of a lease.

Every lease a cluster's worker takes starts with the cluster's id (``taskapp.liveness``),
and the cluster's timer commits a heartbeat every ``CLUSTER_BEAT_SECONDS``. Any other
cluster's timer that finds a heartbeat older than ``CLUSTER_DEAD_SECONDS`` releases every
lease of that cluster — bumping each run's version, so a holder that was only slow has its
next write refused (``LeaseLost``) — dispatches those runs at once and deletes the row, all
in one transaction. A cluster stopping (or restarted on the same host) does the same for
itself (or its predecessor) without waiting. The safety argument is in docs/engine.md,
"Recovery after a crash".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest

from engine.runs import ACTIVE
from taskapp import dispatch, models
from taskapp.conf import conf
from taskapp.liveness import parse_owner
from taskapp.services.wakeups import backstop

log = logging.getLogger("async_states.liveness")

_ACTIVE = [str(s) for s in ACTIVE]


def clusters_take_over(
    *, own: str, healthy_since: datetime, now: datetime | None = None,
) -> list[str]:
    """Declare dead every other cluster silent for ``CLUSTER_DEAD_SECONDS`` and take over
    the runs they held; returns those runs' ids.

    ``healthy_since`` is when the calling cluster's own beats last became continuous: a
    cluster is declared dead only after ``CLUSTER_DEAD_SECONDS`` of silence *while the
    caller could write*, so after an outage of the database every cluster gets time to beat
    again before anyone judges it.
    """
    now = now or conf.clock.now()
    stale_before = now - timedelta(seconds=float(conf.CLUSTER_DEAD_SECONDS))
    if healthy_since > stale_before:
        return []
    # A plain read first: on SQLite an atomic block takes the write lock, and the timer
    # looks twice a second while nobody is dead.
    silent = (models.ClusterHeartbeat.objects.filter(beat_at__lt=stale_before)
              .exclude(owner=own).values_list("owner", flat=True))
    taken: list[str] = []
    for owner in list(silent):
        taken += _take_over(owner, stale_before=stale_before, now=now)
    return taken


def clusters_recover_host(
    *, own: str, alive: Callable[[int], bool], now: datetime | None = None,
) -> list[str]:
    """At a cluster's start: take over at once the runs of earlier clusters on this host
    whose main process is gone (``alive(pid)`` is False, or the pid is the caller's own —
    a restarted container); returns those runs' ids. A pid reused by another process
    looks alive: that cluster is then declared dead by its silence like any other."""
    host, pid, _ = parse_owner(own)
    earlier = (models.ClusterHeartbeat.objects.filter(owner__startswith=f"{host}:")
               .exclude(owner=own).values_list("owner", flat=True))
    taken: list[str] = []
    for owner in list(earlier):
        their_host, their_pid, _ = parse_owner(owner)
        if their_host == host and their_pid is not None and (
                their_pid == pid or not alive(their_pid)):
            taken += _take_over(owner, stale_before=None, now=now or conf.clock.now())
    return taken


def cluster_workers_reap(
    *, cluster: str, alive: Callable[[int], bool], now: datetime | None = None,
) -> list[str]:
    """Take over at once the runs held by workers of ``cluster`` (this host's own cluster)
    whose process is gone (``alive(pid)`` is False): a worker killed inside a cluster that
    lives on keeps the cluster's heartbeat going, so without this its runs would wait for
    their lease. Only the dead workers' leases are released (their version bumped, so a
    holder that is somehow still there is refused); returns those runs' ids."""
    if not cluster:
        return []
    now = now or conf.clock.now()
    held = _held_by(cluster, now).values_list("id", "lease_owner")
    dead = [(run_id, owner) for run_id, owner in held if _gone(owner, alive)]
    if not dead:
        return []
    with transaction.atomic():
        # Each run only while the dead worker still holds it: one released meanwhile and
        # taken by a live worker is that worker's.
        reaped = [run_id for run_id, owner in dead if models.Run.objects.filter(
            id=run_id, lease_owner=owner).update(
                lease_owner="", lease_expires_at=None, wake_at=backstop(now),
                version=F("version") + 1)]
        dispatch.advance_many_later(reaped, batch=int(conf.WAKE_BATCH))
    if reaped:
        log.warning("cluster.workers_reaped cluster=%s runs=%s", cluster, len(reaped))
    return [str(i) for i in reaped]


def _gone(lease_owner: str, alive: Callable[[int], bool]) -> bool:
    """Whether the worker process named in ``lease_owner`` (``cluster/host:pid:...``) is
    gone; an owner that cannot be read is left to its lease."""
    try:
        pid = int(lease_owner.partition("/")[2].split(":")[1])
    except (IndexError, ValueError):
        return False
    return not alive(pid)


def cluster_leave(*, owner: str) -> list[str]:
    """A cluster stops: release the runs its workers still hold (none after a clean stop;
    those of workers killed past the shutdown grace otherwise), dispatch them and delete its
    heartbeat. Call it only once every worker of the cluster is gone."""
    return _take_over(owner, stale_before=None, now=conf.clock.now())


def _take_over(owner: str, *, stale_before: datetime | None, now: datetime) -> list[str]:
    """Release ``owner``'s cluster's leases and delete its heartbeat, if it is still
    there (and still older than ``stale_before``): two clusters judging at once take
    it over once."""
    with transaction.atomic():
        row = models.ClusterHeartbeat.objects.select_for_update(skip_locked=True).filter(
            owner=owner)
        if stale_before is not None:
            row = row.filter(beat_at__lt=stale_before)
        beat = row.first()
        if beat is None:
            return []
        ids = _release(parse_owner(owner)[2], now)
        beat.delete()
    if stale_before is not None or ids:
        log.warning("cluster.taken_over owner=%s runs=%s last_beat=%s", owner, len(ids),
                    beat.beat_at.isoformat())
    return ids


def _held_by(cluster: str, now: datetime) -> models.QuerySet:
    """The active runs leased by workers of ``cluster``. A leased run's wake_at is its
    lease's end (or, once the lease passed, the backstop the timer set): bounding it lets
    the wake-up index narrow the search."""
    horizon = now + timedelta(seconds=float(conf.LEASE_SECONDS)
                              + float(conf.REDISPATCH_SECONDS) + 60)
    return models.Run.objects.filter(wake_at__lte=horizon, status__in=_ACTIVE,
                                     lease_owner__startswith=f"{cluster}/")


def _release(cluster: str, now: datetime) -> list[str]:
    """Free and dispatch every active run leased by a worker of ``cluster``."""
    if not cluster:
        return []
    ids = list(_held_by(cluster, now).values_list("id", flat=True))
    if not ids:
        return []
    # The whole cluster went (its host, or every one of its processes): that is not what
    # any of its runs did, so their claims are not counted as crashed steps. A single
    # worker dying inside a live cluster (cluster_workers_reap) may be a poison run's doing
    # and keeps the count (taskapp/isolation.py steps those runs alone next).
    models.Run.objects.filter(id__in=ids, lease_owner__startswith=f"{cluster}/").update(
        lease_owner="", lease_expires_at=None, wake_at=backstop(now),
        version=F("version") + 1, crashes=Greatest(F("crashes") - 1, 0))
    dispatch.advance_many_later(ids, batch=int(conf.WAKE_BATCH))
    return [str(i) for i in ids]
