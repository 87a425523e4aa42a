"""Settings for every environment, read from the environment.

Embedded by default: a SQLite file in WAL mode and django-q2's ORM broker, no other server.
``DATABASE_URL`` (dj-database-url form) switches to PostgreSQL; ``REDIS_URL`` switches the
django-q2 broker and the channel layer to Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ASYNC_STATES_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in ``var/``.

    A fixed, well-known key in the repository would let anyone forge sessions and signed
    django-q2 payloads, so the embedded default makes its own.
    """
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets
        import tempfile

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Written aside (mode 0600), then linked into place: processes starting together on
        # a fresh install (the two passes of `make test`) all keep the first one's key, and
        # none reads a half-written file.
        with tempfile.NamedTemporaryFile("w", dir=VAR_DIR, prefix=".secret_key.",
                                         delete=False) as new:
            new.write(secrets.token_urlsafe(50))
        try:
            os.link(new.name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(new.name)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Whether the key came from the environment (taskapp/checks.py warns when hosts share a
# database but each generated its own).
SECRET_KEY_FROM_ENVIRONMENT = bool(os.environ.get("SECRET_KEY"))
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Pages on other origins (scheme://host[:port]) that may open the dashboard's websocket, besides
# the server's own origin and CSRF_TRUSTED_ORIGINS (dashboard/origins.py).
WEBSOCKET_ALLOWED_ORIGINS = env_list("WEBSOCKET_ALLOWED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    # taskapp before django_q: its qcluster command (django-q2's cluster plus the engine's
    # timer thread) takes precedence over django-q2's own.
    "taskapp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # NUL in an API path, query or header is refused before anything sends it to the database.
    "taskapp.api.middleware.RefuseNul",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "async_states.urls"
ASGI_APPLICATION = "async_states.asgi.application"
WSGI_APPLICATION = "async_states.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --------------------------------------------------------------------------- database


def _database() -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'async_states.sqlite3'}"
    # Persistent connections: django-q2 otherwise opens a connection for nearly every queue
    # operation (5-15 tasks/s instead of 120-180 on PostgreSQL, docs/stack.md).
    db = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # WAL + IMMEDIATE + a 20 s busy timeout: zero "database is locked" failures with
        # several worker processes, against 41-53% at Django's defaults (docs/stack.md).
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        db["CONN_MAX_AGE"] = None
        # A file, not Django's in-memory default: end-to-end tests start cluster processes
        # that must see the test database. One per test process, so sessions run side by
        # side do not destroy each other's.
        db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    if test_name := os.environ.get("TEST_DATABASE_NAME"):
        db["TEST"] = {"NAME": test_name}
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")

# --------------------------------------------------------------------------- django-q2

Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "async_states"),
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    # A step is bounded by ASYNC_STATES["STEP_MAX_SECONDS"]; django-q2's timeout only guards
    # against a wedged worker. timeout must stay below retry.
    "timeout": 600,
    "retry": 660,
    # Successes are not saved: the engine keeps its own history. save_limit=250 made the
    # monitor cap a cluster at ~54 tasks/s, -1 sustained ~249/s (docs/stack.md).
    "save_limit": -1,
    # Engine tasks are idempotent (a claim decides who works), so a redelivery is harmless;
    # 0 would retry a failing task forever.
    "max_attempts": 2,
    "ack_failures": True,
    "catch_up": False,
    "label": "Queue",
    # Worker memory is bounded by recycling: after each task a worker whose peak resident
    # size passed Q_MAX_RSS_MB (512 MiB; an idle worker holds 85-90 MiB) is replaced by a
    # fresh process, and every worker is replaced after Q_RECYCLE tasks anyway (leaks).
    # Each recycle is reported by GET /api/health/ (docs/deploy.md, "Worker memory").
    "max_rss": int(float(os.environ.get("Q_MAX_RSS_MB", "512")) * 1024) or None,
    "recycle": int(os.environ.get("Q_RECYCLE", "500")),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    # Pickup latency ~47 ms at poll=0.05 against ~116 ms at the default 0.2 (docs/stack.md).
    Q_CLUSTER["poll"] = float(os.environ.get("Q_POLL", "0.05"))
if env_bool("Q_SYNC"):
    Q_CLUSTER["sync"] = True

# --------------------------------------------------------------------------- channels


def redis_channel_layer(url: str, **config: object) -> dict:
    """The channel layer on Redis at ``url`` (tests build theirs with this too)."""
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, and channels-redis
            # waits for messages with a blocking pop of 5 s: an idle websocket's receive
            # then raised TimeoutError and daphne closed it with 1011 (redis-py #4091,
            # channels_redis #422). 10 s still notices a dead connection.
            "hosts": [{"address": url, "socket_timeout": 10}],
            # channels-redis drops messages past a channel's capacity (100 by default)
            # without a word: a dashboard client behind in a burst would miss pushes.
            "capacity": 2000,
            # The dashboard's "runs" group is one key on the server: named for the cluster,
            # so two deployments (or test and bench runs) on one Redis database never see
            # each other's runs — without it a bench's websocket received every other
            # session's pushes and, past the capacity, lost its own.
            "prefix": f"asgi:{Q_CLUSTER['name']}",
            **config,
        },
    }


# How the dashboard hears of changes (dashboard/push.py): "auto" (the default) picks
# "layer" with a cross-process channel layer and "poll" with the in-memory one.
DASHBOARD_PUSH = os.environ.get("DASHBOARD_PUSH", "auto")

if REDIS_URL:
    CHANNEL_LAYERS = {"default": redis_channel_layer(REDIS_URL)}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --------------------------------------------------------------------------- REST framework

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The API speaks JSON (task YAML may also be posted as text to /api/tasks/validate/).
    # Bounded in size, depth and values (taskapp/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["taskapp.api.parsers.JsonParser"],
    # One JSON error shape for every failure: {"code", "message", "errors"} (taskapp/api/errors.py).
    "EXCEPTION_HANDLER": "taskapp.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Async States API",
    "DESCRIPTION": "Start, follow, signal and control runs of YAML-declared state-machine tasks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Like every endpoint but health: the schema and its UI need a user (session or token).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from our own static files (drf-spectacular-sidecar): no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --------------------------------------------------------------------------- the engine

ASYNC_STATES = {
    # How long a worker owns a run it claimed before others may take it over (crash safety).
    "LEASE_SECONDS": float(os.environ.get("ASYNC_STATES_LEASE_SECONDS", "60")),
    # How often the timer thread of each cluster looks for due wake-ups.
    "TICK_SECONDS": float(os.environ.get("ASYNC_STATES_TICK_SECONDS", "0.05")),
    # Runs due together go this many to a queued task (docs/engine.md, "Timers").
    "WAKE_BATCH": int(os.environ.get("ASYNC_STATES_WAKE_BATCH", "16")),
    # Environment variables visible to task files as secrets.NAME: <prefix>NAME.
    "SECRETS_PREFIX": os.environ.get("ASYNC_STATES_SECRETS_PREFIX", "ASYNC_STATES_SECRET_"),
    "EVENT_TTL_SECONDS": float(os.environ.get("ASYNC_STATES_EVENT_TTL_SECONDS", "86400")),
    # One step yields the worker after this many transitions or seconds, so one busy run
    # cannot starve the others.
    "STEP_MAX_TRANSITIONS": 200,
    "STEP_MAX_SECONDS": 30.0,
    # Threads per worker process for conditions raced in one step.
    "CONDITION_THREADS": 8,
    # Retry delays up to this are slept in the step; longer ones park the run.
    "INLINE_RETRY_MAX_SECONDS": 1.0,
    "TASKDEFS_DIR": str(BASE_DIR / "taskdefs"),
}
# Size limits (bytes of JSON), the crash bound of a run, when a step is stuck and the run
# steps each worker process drives at once (STEP_THREADS) and the database connections they
# share (STEP_DB_CONNECTIONS): defaults
# and meaning in taskapp/conf.py and docs/deploy.md; ASYNC_STATES_<NAME> overrides each.
ASYNC_STATES.update({
    name: int(os.environ[f"ASYNC_STATES_{name}"])
    for name in ("MAX_INPUT_BYTES", "MAX_EVENT_BYTES", "MAX_RESULT_BYTES", "MAX_DATA_BYTES",
                 "MAX_STEP_CRASHES", "STUCK_STEP_SECONDS", "STEP_THREADS",
                 "STEP_DB_CONNECTIONS")
    if os.environ.get(f"ASYNC_STATES_{name}")
})
if os.environ.get("ASYNC_STATES_SUSPECT_ALONE_SECONDS"):
    ASYNC_STATES["SUSPECT_ALONE_SECONDS"] = float(os.environ["ASYNC_STATES_SUSPECT_ALONE_SECONDS"])
# Cluster liveness and shutdown (docs/deploy.md): set only when the environment says so, so
# the defaults stay in taskapp/conf.py.
for _name in ("CLUSTER_BEAT_SECONDS", "CLUSTER_FENCE_SECONDS", "CLUSTER_DEAD_SECONDS",
              "SHUTDOWN_GRACE_SECONDS", "LISTENER_POLL_SECONDS",
              "LISTENER_MAX_BACKOFF_SECONDS"):
    if os.environ.get(f"ASYNC_STATES_{_name}"):
        ASYNC_STATES[_name] = float(os.environ[f"ASYNC_STATES_{_name}"])

# Where rpc descriptor_set files are read from (default: TASKDEFS_DIR; taskapp/conf.py).
if os.environ.get("ASYNC_STATES_DESCRIPTOR_DIR"):
    ASYNC_STATES["DESCRIPTOR_DIR"] = os.environ["ASYNC_STATES_DESCRIPTOR_DIR"]

# Lifecycle events of every task (docs/deploy.md, "Lifecycle events"): a `lifecycle:` mapping
# naming a connection, like '{connection: events, to: async_states.lifecycle}'.
for _name in ("LIFECYCLE", "LIFECYCLE_SOURCE"):
    if os.environ.get(f"ASYNC_STATES_{_name}"):
        ASYNC_STATES[_name] = os.environ[f"ASYNC_STATES_{_name}"]
for _name in ("LIFECYCLE_BATCH", "LIFECYCLE_LEASE_SECONDS", "LIFECYCLE_TIMEOUT_SECONDS",
              "LIFECYCLE_POLL_SECONDS", "LIFECYCLE_MAX_BACKOFF_SECONDS"):
    if os.environ.get(f"ASYNC_STATES_{_name}"):
        ASYNC_STATES[_name] = float(os.environ[f"ASYNC_STATES_{_name}"])

# --------------------------------------------------------------------------- the rest

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# daphne serves /static/ itself (async_states/asgi.py) unless a deployment puts a web server
# in front: SERVE_STATIC=0, then `collectstatic` into STATIC_ROOT.
SERVE_STATIC = env_bool("SERVE_STATIC", True)
# Threads serving HTTP in each daphne process (async_states/pooled_http.py). Each keeps one
# database connection, so a process holds at most this many.
WEB_THREADS = int(os.environ.get("WEB_THREADS", "8"))
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "/login/"
LOGOUT_REDIRECT_URL = "/login/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every form of every secret is redacted from every record (async_states/log_redaction.py).
    "filters": {"secrets": {"()": "async_states.log_redaction.RedactSecrets",
                            "prefix": ASYNC_STATES["SECRETS_PREFIX"]}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["secrets"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "async_states": {"level": os.environ.get("ASYNC_STATES_LOG_LEVEL", "INFO")},
        "django-q": {"level": os.environ.get("DJANGO_Q_LOG_LEVEL", "WARNING")},
        # Its DEBUG lines are each request's method, path and query: noise, and a rendered
        # URL may hold a secret (redacted by the filter above all the same).
        "urllib3": {"level": "INFO"},
    },
}
