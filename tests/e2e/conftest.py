"""End-to-end fixtures: the real django-q2 cluster (our ``qcluster``) as a subprocess on the
test database, and a local HTTP server as the far end of instructions.

The cluster must see what the test commits, so these tests use ``transactional_db`` and a
file (SQLite) or server (PostgreSQL) database, never an in-memory one.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bench.far_end import FarEnd
from engine.instructions import ExecContext, db
from engine.instructions.db import DbExecutor
from engine.language.model import DbSpec
from taskapp import models
from taskapp.services import definition_load
from tests.engine.brokers import (
    AMQP_URL,
    MQTT_URL,
    NATS_URL,
    REDIS_URL,
    require_port,
    require_rabbitmq,
)
from tests.grpcserver import StockServer, free_port
from tests.services import MARIADB_URL, require_mariadb

ROOT = Path(__file__).resolve().parents[2]
# What a person may want to look at after a run: screenshots, server logs. One folder per pass
# of ``make test`` (TEST_PASS, set by scripts/test.sh): the passes run at the same time.
ARTIFACTS = ROOT / "var" / "test-artifacts" / os.environ.get("TEST_PASS", "")
TOKEN = "e2e-inventory-T0ken"  # the inventory service's secret, as the cluster gets it


def database_url() -> str:
    """A URL for the database this test session really uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:"
            f"{db.get('PORT') or 5432}/{db['NAME']}")


class Cluster:
    """A running ``manage.py qcluster`` process group."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> None:
        self.output = []
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise RuntimeError("qcluster did not start:\n" + "".join(self.output[-40:]))

    def _read(self, ready: threading.Event) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.output.append(line)
            if "Async States cluster ready" in line:
                ready.set()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # as a process manager would
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once: a machine loss."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(**extra: str) -> dict[str, str]:
    """The environment of a cluster or daphne a test starts: the test database, the
    embedded default (no Redis: the poll mode, the ORM broker), plus ``extra``."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "async_states.settings",
           "DATABASE_URL": database_url(), "SECRET_KEY": settings.SECRET_KEY,
           "Q_WORKERS": "2", "PYTHONUNBUFFERED": "1", **extra}
    for name in ("TEST_DATABASE_NAME", "REDIS_URL"):
        env.pop(name, None)
    return env


class Daphne:
    """A daphne process serving the project on a free loopback port; its output to ``log``."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p",
             str(self.port), "async_states.asgi:application"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"daphne did not listen on {self.port}: see {log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def sqlite_pass_only() -> None:
    """For a test that does not use the database under test (it needs none, or brings its
    own): the PostgreSQL pass of ``make test`` would run the very same test again."""
    if connection.vendor != "sqlite":
        pytest.skip("does not use the database under test: it runs in the SQLite pass")


@pytest.fixture
def cluster(transactional_db, far_end) -> Iterator[Cluster]:
    env = {
        # Task files reach the far end as {{ secrets.FAR_END }}.
        "ASYNC_STATES_SECRET_FAR_END": far_end.url,
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "async_states.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "Q_WORKERS": "2",
        "ASYNC_STATES_LEASE_SECONDS": "3",
        "DJANGO_Q_LOG_LEVEL": "INFO",
        "ASYNC_STATES_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TEST_DATABASE_NAME", None)
    running = Cluster(env)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def far_end() -> Iterator[FarEnd]:
    server = FarEnd()
    yield server
    server.close()


@pytest.fixture
def load(transactional_db):
    def load_(text: str) -> str:
        result = definition_load(text=text, source="e2e.yaml")
        assert result.status == "loaded", [str(p) for p in result.problems] or result.message
        return result.definition.name
    return load_


@pytest.fixture
def brokers(monkeypatch):
    """The four local brokers up and configured as the shipped task's connections (before
    the cluster starts: it inherits this environment)."""
    require_rabbitmq()
    require_port("Mosquitto", 1883)
    require_port("NATS", 4222)
    require_port("Redis", 6379)
    for name, url in {"SHOP": AMQP_URL, "DEVICES": MQTT_URL, "BUS": NATS_URL,
                      "EVENTS": REDIS_URL, "CACHE": REDIS_URL}.items():
        monkeypatch.setenv(f"ASYNC_STATES_CONNECTION_{name}", url)
    monkeypatch.setenv("ASYNC_STATES_LISTENER_POLL_SECONDS", "0.5")


def listeners() -> list[dict]:
    return [state for row in models.ClusterHeartbeat.objects.all() for state in row.listeners]


def wait_listening(count: int, timeout: float = 30.0) -> list[dict]:
    """Until ``count`` listeners (over every cluster) report themselves connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = listeners()
        if sum(1 for s in states if s["connected"]) >= count:
            return states
        time.sleep(0.1)
    raise AssertionError(f"not {count} listeners connected: {listeners()}")


def sql(query: str, **params):
    spec = DbSpec(url=MARIADB_URL, query=query, params=tuple(params.items()))
    ctx = ExecContext(render=lambda v: v, timeout=10, idempotency_key="e2e")
    return DbExecutor().execute(spec, ctx)


@pytest.fixture
def reach(monkeypatch):
    """A MariaDB table for the task, a port for the gRPC server (not started yet), and the
    connections configured before the cluster starts (it inherits this environment)."""
    require_mariadb()
    table = f"reservations_{uuid.uuid4().hex[:10]}"
    sql(f"CREATE TABLE {table} (id varchar(64) PRIMARY KEY, sku text, quantity int, "
        "status text)", fetch="none")
    server = StockServer(free_port())
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_INVENTORY", f"grpc://{server.target}")
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_WAREHOUSE", MARIADB_URL)
    monkeypatch.setenv("ASYNC_STATES_SECRET_INVENTORY_TOKEN", TOKEN)
    yield server, table
    server.stop()
    sql(f"DROP TABLE {table}", fetch="none")
    db._connections().clear()


def wait_for(run_id: object, statuses: set[str] | None = None, timeout: float = 30.0,
             state: str | None = None) -> models.Run:
    """Poll the database until the run reaches one of ``statuses`` (finished by default)
    or ``state``; bounded by ``timeout``."""
    statuses = statuses or {"succeeded", "failed", "timed_out", "cancelled"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = models.Run.objects.get(pk=run_id)
        if (state is None and run.status in statuses) or (state and run.state == state):
            return run
        time.sleep(0.05)
    run = models.Run.objects.get(pk=run_id)
    raise AssertionError(f"run {run_id} still {run.status} in {run.state!r} after {timeout}s")


def path_of(run: models.Run) -> list[tuple[str, str, str]]:
    return list(models.Transition.objects.filter(run=run).order_by("seq")
                .values_list("from_state", "to_state", "trigger"))
