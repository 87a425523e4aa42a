"""The engine's settings, read lazily from ``settings.ASYNC_STATES`` and reloaded when a test
overrides them (DRF's ``api_settings`` pattern)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from engine.clock import Clock, SystemClock
from engine.runner import EngineSettings

DEFAULTS: dict[str, Any] = {
    "LEASE_SECONDS": 60.0,
    "TICK_SECONDS": 0.05,
    "REDISPATCH_SECONDS": 30.0,
    # The timer dispatches due wake-ups only while django-q2's queue holds fewer tasks than
    # this: a backlog is worked off in wake-up order instead of growing with re-dispatches.
    "TIMER_MAX_QUEUE": 200,
    # Runs that come due together are dispatched up to this many per queued task (the timer
    # splits a burst into even batches), and one task stops taking runs from its batch after
    # WAKE_BATCH_SECONDS and queues the rest: a queue round-trip costs more than the step of
    # a waiting run, and a burst of 100,000 timers drained at 75 runs/s one task each.
    "WAKE_BATCH": 16,
    "WAKE_BATCH_SECONDS": 5.0,
    "SECRETS_PREFIX": "ASYNC_STATES_SECRET_",
    "EVENT_TTL_SECONDS": 86400.0,
    "STEP_MAX_TRANSITIONS": 200,
    "STEP_MAX_SECONDS": 30.0,
    "CONDITION_THREADS": 8,
    "INLINE_RETRY_MAX_SECONDS": 1.0,
    "TASKDEFS_DIR": "taskdefs",
    # Cluster liveness (docs/engine.md, "Recovery after a crash"): each cluster's timer
    # commits a heartbeat every CLUSTER_BEAT_SECONDS; a cluster whose last one is older than
    # CLUSTER_DEAD_SECONDS is declared dead by any other and the runs it held are taken
    # over at once. Its own workers stop calling out once their cluster's last committed
    # beat is older than CLUSTER_FENCE_SECONDS, which must stay below CLUSTER_DEAD_SECONDS
    # by more than the clock skew between hosts and above the beat interval plus the
    # slowest beat write one wants to ride out.
    "CLUSTER_BEAT_SECONDS": 0.5,
    "CLUSTER_FENCE_SECONDS": 1.5,
    "CLUSTER_DEAD_SECONDS": 2.5,
    # On SIGTERM/SIGINT qcluster lets its workers finish the step in hand for this long,
    # then SIGKILLs every process it started and releases the runs they held.
    "SHUTDOWN_GRACE_SECONDS": 30.0,
    # "queue": through django-q2 (the real thing); "none": nobody is told (tests drive runs
    # by calling the services themselves).
    "DISPATCH": "queue",
}


class _Conf:
    def __init__(self) -> None:
        self._cache: dict[str, Any] | None = None
        self.clock: Clock = SystemClock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(name)
        if self._cache is None:
            self._cache = {**DEFAULTS, **getattr(settings, "ASYNC_STATES", {})}
        return self._cache[name]

    def reload(self) -> None:
        self._cache = None

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            step_max_transitions=int(self.STEP_MAX_TRANSITIONS),
            step_max_seconds=float(self.STEP_MAX_SECONDS),
            inline_retry_max_seconds=float(self.INLINE_RETRY_MAX_SECONDS),
            secrets_prefix=self.SECRETS_PREFIX,
        )


conf = _Conf()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "ASYNC_STATES":
        conf.reload()


setting_changed.connect(_reload)
