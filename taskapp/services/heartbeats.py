"""Cluster heartbeats: each cluster's timer thread says it is alive, the health check reads it.

django-q2 keeps its own cluster statistics in Django's cache, which is per process unless a
shared cache is configured; a row per cluster process works with every deployment we support.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from taskapp import models
from taskapp.conf import conf

# A cluster that has not beaten for a day is gone for good: its row is dropped.
_FORGET_AFTER = timedelta(days=1)


def cluster_heartbeat(*, owner: str, started_at: datetime, now: datetime | None = None) -> None:
    """Record that the cluster process ``owner`` (host:pid, and ``/cluster`` id) is alive
    at ``now``."""
    now = now or conf.clock.now()
    updated = models.ClusterHeartbeat.objects.filter(owner=owner).update(beat_at=now)
    if not updated:
        models.ClusterHeartbeat.objects.create(owner=owner, beat_at=now, started_at=started_at)
        models.ClusterHeartbeat.objects.filter(beat_at__lt=now - _FORGET_AFTER).delete()


def cluster_heartbeat_end(*, owner: str) -> None:
    """The cluster process ``owner`` stopped cleanly."""
    models.ClusterHeartbeat.objects.filter(owner=owner).delete()


def cluster_listeners_report(*, owner: str, listeners: list[dict]) -> None:
    """Record the state of the broker listeners of cluster process ``owner`` (shown by the
    health check and /metrics); a cluster without a heartbeat row yet records it next time."""
    models.ClusterHeartbeat.objects.filter(owner=owner).update(listeners=listeners)
