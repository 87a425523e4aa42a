"""Django system checks: contradictions in the deployment's settings, refused or warned about
before any process serves or works (``manage.py check``, and every ``runserver``, ``migrate``
and ``qcluster`` start).

Each check names the settings involved and what to change, so that an operator can act on
the message without reading code. Ids: ``async_states.E0xx`` (refused) and ``.W0xx`` (warned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import checks

from engine.errors import Severity
from engine.language.lifecycle_parser import parse_lifecycle
from taskapp.conf import DEFAULTS, conf

# Settings that must be numbers above zero, with the unit a message names.
_POSITIVE = ("LEASE_SECONDS", "TICK_SECONDS", "STEP_MAX_SECONDS", "STEP_MAX_TRANSITIONS",
             "WAKE_BATCH", "CONDITION_THREADS", "TIMER_MAX_QUEUE", "EVENT_TTL_SECONDS",
             "MAX_STEP_CRASHES")


@checks.register(checks.Tags.compatibility)
def check_engine_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every ``ASYNC_STATES`` key is known, typed like its default, and positive where it
    must be; a typo would otherwise be ignored silently."""
    given = getattr(settings, "ASYNC_STATES", {})
    problems: list[checks.CheckMessage] = [
        checks.Error(f"ASYNC_STATES has an unknown key {key!r}",
                     hint=f"known keys: {', '.join(sorted(DEFAULTS))}", id="async_states.E001")
        for key in given if key not in DEFAULTS
    ]
    for name in _POSITIVE:
        value = getattr(conf, name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            problems.append(checks.Error(
                f"ASYNC_STATES['{name}'] must be a number above 0, got {value!r}",
                hint=f"the default is {DEFAULTS[name]!r}", id="async_states.E002"))
    for name, defaults in _POOL_SIZES.items():
        size = getattr(conf, name)
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                                 or size <= 0):
            problems.append(checks.Error(
                f"ASYNC_STATES['{name}'] must be a whole number above 0, got {size!r}",
                hint=f"None (the default) means {defaults}", id="async_states.E002"))
    return problems


# Pool sizes whose default depends on the database (taskapp/conf.py).
_POOL_SIZES = {
    "STEP_THREADS": "4 on SQLite and 64 on PostgreSQL",
    "STEP_DB_CONNECTIONS": "4 on SQLite and 8 on PostgreSQL (never more than STEP_THREADS)",
}


@checks.register(checks.Tags.compatibility)
def check_time_budgets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The three clocks that bound a step must nest: step budget < lease, and django-q2's
    task timeout between the step budget and its own retry."""
    step, lease = _number("STEP_MAX_SECONDS"), _number("LEASE_SECONDS")
    q = getattr(settings, "Q_CLUSTER", {})
    timeout, retry = q.get("timeout"), q.get("retry")
    problems: list[checks.CheckMessage] = []
    if step is not None and lease is not None and step >= lease:
        # A warning, not an error: every commit renews the lease, so only a step that spends
        # longer than the lease between two commits (one slow call) is at risk.
        problems.append(checks.Warning(
            f"ASYNC_STATES['STEP_MAX_SECONDS'] ({step:g}) is not below LEASE_SECONDS "
            f"({lease:g}): a step that spends longer than the lease in one call can be taken "
            "over by another worker while it still runs",
            hint="lower STEP_MAX_SECONDS or raise LEASE_SECONDS (ASYNC_STATES_LEASE_SECONDS)",
            id="async_states.W010"))
    if timeout is not None and retry is not None and timeout >= retry:
        problems.append(checks.Error(
            f"Q_CLUSTER['timeout'] ({timeout}) must be below Q_CLUSTER['retry'] ({retry}): "
            "django-q2 hands a task still running to a second worker",
            hint="keep retry at least a few seconds above timeout", id="async_states.E011"))
    if timeout is not None and step is not None and timeout <= step:
        problems.append(checks.Error(
            f"Q_CLUSTER['timeout'] ({timeout}) must be above ASYNC_STATES['STEP_MAX_SECONDS'] "
            f"({step:g}): django-q2 would kill workers in the middle of steps",
            hint="raise Q_CLUSTER timeout and retry, or lower STEP_MAX_SECONDS",
            id="async_states.E012"))
    return problems


@checks.register(checks.Tags.compatibility)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """What works on one machine and breaks on several: the in-memory channel layer forced
    into layer mode, a key generated per host, a task directory that is not there."""
    problems: list[checks.CheckMessage] = []
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if getattr(settings, "DASHBOARD_PUSH", "auto") == "layer" and "InMemory" in backend:
        problems.append(checks.Error(
            "DASHBOARD_PUSH is 'layer' but the channel layer is the in-memory one, which "
            "never leaves its process: workers' pushes would never reach the browsers",
            hint="set REDIS_URL (channels-redis), or leave DASHBOARD_PUSH at 'auto'",
            id="async_states.E020"))
    if _shared_database() and not getattr(settings, "SECRET_KEY_FROM_ENVIRONMENT", True):
        problems.append(checks.Warning(
            "SECRET_KEY is generated and kept in this host's var/ while the database is shared: "
            "each host signs sessions and django-q2 payloads with a different key",
            hint="set the SECRET_KEY environment variable to the same value on every host",
            id="async_states.W021"))
    problems += _lifecycle_problems()
    taskdefs = Path(str(conf.TASKDEFS_DIR))
    if not taskdefs.is_dir():
        problems.append(checks.Warning(
            f"ASYNC_STATES['TASKDEFS_DIR'] {str(taskdefs)!r} is not a directory: "
            "`loadtasks` without paths will find no task files",
            hint="create it, or set TASKDEFS_DIR to the folder with your task files",
            id="async_states.W022"))
    return problems


def _lifecycle_problems() -> list[checks.CheckMessage]:
    """The deployment's LIFECYCLE setting, read as a task's ``lifecycle:`` is read."""
    _found, problems = parse_lifecycle(str(conf.LIFECYCLE), "ASYNC_STATES_LIFECYCLE")
    return [
        (checks.Error if p.severity is Severity.ERROR else checks.Warning)(
            f"ASYNC_STATES_LIFECYCLE: {p.message}",
            hint="write it like a task's lifecycle: key, e.g. "
                 "'{connection: events, to: async_states.lifecycle}' (docs/deploy.md)",
            id="async_states.E030" if p.severity is Severity.ERROR else "async_states.W030")
        for p in problems
    ]


def _number(name: str) -> float | None:
    value = getattr(conf, name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _shared_database() -> bool:
    engine = settings.DATABASES.get("default", {}).get("ENGINE", "")
    return not engine.endswith("sqlite3")
