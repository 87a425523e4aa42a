"""Shared machinery for benchmarks: a scratch database, Django set up on it, a cluster
subprocess, and statistics. Benchmarks print figures; they never assert times."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"


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


def setup_django(database_url: str, **env: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "async_states.settings")
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class Cluster:
    """``manage.py qcluster`` in its own process group, with the same environment."""

    def __init__(self, workers: int = 2, **env: str):
        self.env = {**os.environ, "Q_WORKERS": str(workers), **env}
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def __enter__(self) -> Cluster:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        ready = threading.Event()

        def read() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.log.append(line)
                if "Async States cluster ready" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.__exit__()
            raise RuntimeError("cluster did not start:\n" + "".join(self.log[-30:]))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def tree(self) -> dict[int, tuple[int, int]]:
        """pid -> (threads, resident KiB) for the cluster's processes."""
        assert self.process
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
        pids, frontier = {self.process.pid}, [self.process.pid]
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
            result[pid] = (int(fields["Threads"]), int(fields["VmRSS"].split()[0]))
        return result


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


def wait_until(predicate, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
