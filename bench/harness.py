"""Shared machinery for benchmarks: a scratch database, Django set up on it, a cluster and a
web server as subprocesses, repetition and statistics. Benchmarks print figures; they never
assert times."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
# A Redis database of the benchmark's own; each run empties only its own queue in it.
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"


def scratch_database(base_url: str, name: str) -> str:
    """A fresh database called ``name`` beside ``base_url``'s (PostgreSQL), or a fresh SQLite
    file; returns its URL."""
    if base_url.startswith("sqlite"):
        path = ROOT / "var" / f"{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg2

    parsed = urlparse(base_url)
    admin = psycopg2.connect(base_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return parsed._replace(path=f"/{name}").geturl()


def drop_database(base_url: str, name: str) -> None:
    """Drop a scratch database made by ``scratch_database`` (PostgreSQL; growth leaves ~2 GB)."""
    import psycopg2
    from django.conf import settings
    from django.db import connections

    if settings.configured:  # bench.ceiling's own command never sets Django up
        connections.close_all()
    admin = psycopg2.connect(base_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def setup_django(database_url: str, **env: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def reset_runs(redis_url: str | None = None) -> None:
    """Forget every run, event and queued task (definitions stay): each repetition starts
    from an empty history. In Redis only this cluster's queue is emptied."""
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("TRUNCATE taskapp_run, taskapp_event, django_q_ormq CASCADE")
        else:
            for table in ("taskapp_transition", "taskapp_subscription", "taskapp_run",
                          "taskapp_event", "django_q_ormq"):
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    if redis_url:
        import redis
        from django.conf import settings

        redis.Redis.from_url(redis_url).delete(f"django_q:{settings.Q_CLUSTER['name']}:q")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Process:
    """A child in its own process group (as if on its own host), its output kept."""

    command: list[str]
    ready_line = ""

    def __init__(self, **env: str):
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def __enter__(self):
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not self._wait_ready(ready):
            self.__exit__()
            raise RuntimeError(f"{self.command[:3]} did not start:\n" + "".join(self.log[-30:]))
        return self

    def _read(self, ready: threading.Event) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.log.append(line)
            if self.ready_line and self.ready_line in line:
                ready.set()

    def _wait_ready(self, ready: threading.Event) -> bool:
        return ready.wait(60)

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a host lost."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Cluster(_Process):
    """``manage.py qcluster`` in its own process group, with the same environment."""

    command = [sys.executable, "manage.py", "qcluster"]
    ready_line = "Async States cluster ready"

    def __init__(self, workers: int = 2, **env: str):
        super().__init__(Q_WORKERS=str(workers), **env)

    def tree(self) -> dict[int, tuple[int, int]]:
        """pid -> (threads, resident KiB) for the cluster's processes."""
        assert self.process
        return process_tree(self.process.pid)


class WebServer(_Process):
    """daphne serving the project on a free loopback port; ready when it answers."""

    def __init__(self, port: int | None = None, **env: str):
        """``port``: a given one (a restart keeps its address), else a free one."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1",
                        "-p", str(self.port), "-v", "0", "async_states.asgi:application"]
        super().__init__(**env)

    def _wait_ready(self, ready: threading.Event) -> bool:
        import requests

        def answers() -> bool:
            try:
                requests.get(f"{self.url}/admin/login/", timeout=2)
            except requests.RequestException:
                return False
            return True
        return wait_until(answers, 60, every=0.2)


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """pid -> (threads, resident KiB) for ``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    pids, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        pids.update(kids)
        frontier.extend(kids)
    result = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        # A zombie (exited, not yet reaped) has no VmRSS.
        result[pid] = (int(fields["Threads"]), int(fields.get("VmRSS", "0").split()[0]))
    return result


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``: what is left of a process
    group after its leader exited."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


# ---------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values), "min": min(values), "p50": percentile(values, 50),
        "p99": percentile(values, 99), "max": max(values), "mean": statistics.fmean(values),
    }


def repeat(times: int, measure: Callable[..., dict[str, float]], *args: object) -> dict[str, dict]:
    """Run ``measure(*args)`` ``times`` times; each metric as the median, min and max."""
    samples = [measure(*args) for _ in range(times)]
    return aggregate(samples)


def aggregate(samples: list[dict[str, float]]) -> dict[str, dict]:
    metrics: dict[str, list[float]] = {}
    for sample in samples:
        for name, value in sample.items():
            if isinstance(value, int | float) and value == value:  # drop NaN
                metrics.setdefault(name, []).append(float(value))
    return {name: {"median": statistics.median(values), "min": min(values),
                   "max": max(values), "reps": len(values)}
            for name, values in metrics.items()}


def wait_until(predicate, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def paced(count: int, rate: float) -> Iterator[int]:
    """Iterate ``count`` times at ``rate`` per second (sleeps between items)."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i
