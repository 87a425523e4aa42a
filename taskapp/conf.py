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
    # "queue": through django-q2 (the real thing); "none": nobody is told (tests drive runs
    # by calling the services themselves).
    "DISPATCH": "queue",
    # The API's bounds on a request (docs/api.md, "Limits"). A body past API_MAX_BODY_BYTES
    # is a 413; JSON nested deeper than API_MAX_JSON_DEPTH, or holding an integer beyond
    # ±API_MAX_INTEGER (64-bit: what SQLite's JSON functions read as an integer), is a 400.
    "API_MAX_BODY_BYTES": 2 * 1024 * 1024,
    "API_MAX_JSON_DEPTH": 64,
    "API_MAX_INTEGER": 2**63 - 1,
    # A 503 (the database or the broker is down) tells clients to retry after this long.
    "API_RETRY_AFTER_SECONDS": 5,
    # daphne's HTTP adapter stops reading a body past this many bytes and answers 413 (a
    # body is spooled to a temporary file, so an endless one would fill the disk).
    "WEB_MAX_BODY_BYTES": 16 * 1024 * 1024,
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
