"""The engine's settings, read lazily from ``settings.ASYNC_STATES`` and reloaded when a test
overrides them (DRF's ``api_settings`` pattern)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from engine.clock import Clock, SystemClock
from engine.language.limits import SETTING_NAMES, ReaderLimits
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
    # Real time one dry run over the API may take (POST /api/tasks/simulate/).
    "SIMULATION_MAX_SECONDS": 5.0,
    "STEP_MAX_TRANSITIONS": 200,
    "STEP_MAX_SECONDS": 30.0,
    "CONDITION_THREADS": 8,
    # Run steps each cluster worker process drives at once (taskapp.steps): while one run's
    # instruction waits on a far end, the others go on. None: 4 on SQLite (its writers take
    # turns), 64 on PostgreSQL (bench/RESULTS.md, step10: the curve against far-end latency).
    "STEP_THREADS": None,
    # Database connections a worker's step threads share (taskapp.dbpool): a thread holds
    # one only for its database phases, none while its call is out. None: 4 on SQLite,
    # 8 on PostgreSQL; never more than STEP_THREADS. The connection budget is in
    # docs/deploy.md.
    "STEP_DB_CONNECTIONS": None,
    "INLINE_RETRY_MAX_SECONDS": 1.0,
    # Budgets of one template or predicate evaluation: wall-clock seconds (never past the
    # step's STEP_MAX_SECONDS), operations (loop iterations, calls, filters, operators) and
    # characters produced (also the largest rendered value). Real templates take microseconds,
    # a few hundred operations and a few kB; a hostile one fails its instruction or predicate.
    "TEMPLATE_MAX_SECONDS": 1.0,
    "TEMPLATE_MAX_OPERATIONS": 50_000,
    "TEMPLATE_MAX_OUTPUT": 1_000_000,
    "TASKDEFS_DIR": "taskdefs",
    # Where the rpc instruction reads the descriptor_set files that tasks name: a task names
    # a relative path inside it and nothing outside (docs/task-language.md, "gRPC"). None:
    # TASKDEFS_DIR, beside the task files.
    "DESCRIPTOR_DIR": None,
    # Size limits, in bytes of compact JSON (engine.limits; docs/task-language.md "Limits").
    # An http result holds a body of up to max_response_bytes (1 MiB by default) plus its
    # headers, and JSON escaping can grow text: results get twice that, data twice again.
    "MAX_INPUT_BYTES": 256 * 1024,
    "MAX_EVENT_BYTES": 256 * 1024,
    "MAX_RESULT_BYTES": 2 * 1024 * 1024,
    "MAX_DATA_BYTES": 4 * 1024 * 1024,
    # A run whose steps began this many times in a row without ending cleanly (the worker
    # died or was killed, an unexpected exception, the lease lost) fails instead of being
    # handed to the next worker.
    "MAX_STEP_CRASHES": 3,
    # A run whose last step did not end cleanly is stepped alone in its worker process
    # (taskapp.isolation): it waits for the steps in flight there, and no new one starts
    # beside it for this long, so dying again it is charged alone, not its neighbours.
    "SUSPECT_ALONE_SECONDS": 10.0,
    # A step running this long (STEP_MAX_SECONDS plus a slow instruction, several times
    # over) is reported stuck by its worker's watchdog and by GET /api/health/; 0: never.
    "STUCK_STEP_SECONDS": 120.0,
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
    # Broker sources of subscriptions (docs/deploy.md, "Broker sources"): each cluster looks
    # at the loaded definitions this often and starts or stops one listener per distinct
    # source; a listener whose broker went away reconnects after a doubling delay capped here.
    "LISTENER_POLL_SECONDS": 2.0,
    "LISTENER_MAX_BACKOFF_SECONDS": 10.0,
    # "queue": through django-q2 (the real thing); "none": nobody is told (tests drive runs
    # by calling the services themselves).
    "DISPATCH": "queue",
    # The task-file reader's bounds (engine.language.limits.ReaderLimits, docs/task-language.md
    # "Limits"): any text ends in a definition or in problems, in bounded time and memory.
    "TASKFILE_MAX_BYTES": 1_048_576,
    "TASKFILE_MAX_DEPTH": 64,
    "TASKFILE_MAX_NODES": 10_000,
    "TASKFILE_MAX_ALIASES": 1_000,
    "TASKFILE_MAX_KEY_CHARS": 256,
    "TASKFILE_MAX_STRING_CHARS": 100_000,
    "TASKFILE_MAX_STATES": 1_000,
    "TASKFILE_MAX_INSTRUCTIONS": 100,
    "TASKFILE_MAX_TRANSITIONS": 100,
    "TASKFILE_MAX_TEMPLATES": 300,
    "TASKFILE_MAX_TEMPLATE_CHARS": 30_000,
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
    # Lifecycle events (docs/deploy.md, "Lifecycle events"). LIFECYCLE: where every task's
    # runs publish theirs, written as a task's ``lifecycle:`` mapping (YAML or JSON; empty:
    # nowhere but where a task says). LIFECYCLE_SOURCE: the CloudEvents ``source`` prefix
    # ("/tasks/<task>" is appended). Each cluster's publisher thread claims up to
    # LIFECYCLE_BATCH events at a time for LIFECYCLE_LEASE_SECONDS (then another cluster may
    # publish them again), gives each publish LIFECYCLE_TIMEOUT_SECONDS, looks again after
    # LIFECYCLE_POLL_SECONDS when nothing waits, and after a failure leaves the destination
    # alone for a delay doubling from 1 s up to LIFECYCLE_MAX_BACKOFF_SECONDS.
    "LIFECYCLE": "",
    "LIFECYCLE_SOURCE": "/async_states",
    "LIFECYCLE_BATCH": 100,
    "LIFECYCLE_LEASE_SECONDS": 60.0,
    "LIFECYCLE_TIMEOUT_SECONDS": 5.0,
    "LIFECYCLE_POLL_SECONDS": 0.2,
    "LIFECYCLE_MAX_BACKOFF_SECONDS": 60.0,
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
            template_max_seconds=float(self.TEMPLATE_MAX_SECONDS),
            template_max_operations=int(self.TEMPLATE_MAX_OPERATIONS),
            template_max_output=int(self.TEMPLATE_MAX_OUTPUT),
            max_data_bytes=int(self.MAX_DATA_BYTES),
            max_result_bytes=int(self.MAX_RESULT_BYTES),
            descriptor_dir=str(self.DESCRIPTOR_DIR or self.TASKDEFS_DIR),
        )

    def step_threads(self, vendor: str) -> int:
        """``STEP_THREADS``, or its default for a database ``vendor`` (Django's name)."""
        if self.STEP_THREADS is not None:
            return max(1, int(self.STEP_THREADS))
        return 4 if vendor == "sqlite" else 64

    def step_db_connections(self, vendor: str) -> int:
        """``STEP_DB_CONNECTIONS``, or its default for a database ``vendor``."""
        if self.STEP_DB_CONNECTIONS is not None:
            return max(1, int(self.STEP_DB_CONNECTIONS))
        return 4 if vendor == "sqlite" else 8

    def reader_limits(self) -> ReaderLimits:
        """The task-file reader's bounds, as ``ASYNC_STATES`` sets them."""
        return ReaderLimits(**{field: getattr(self, key) for field, key in SETTING_NAMES.items()})


conf = _Conf()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "ASYNC_STATES":
        conf.reload()


setting_changed.connect(_reload)
