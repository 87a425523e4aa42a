"""A private PostgreSQL cluster and a private Redis for the campaign: it kills and restarts
them at will, so they must never be a developer's (or a neighbour's) servers.

PostgreSQL comes from Debian's binaries (``/usr/lib/postgresql/<major>/bin``) and refuses to
run as root: when the campaign is root, its cluster runs as the ``postgres`` user through
``runuser``. Both listen on free loopback ports and keep nothing on disk once stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench.harness import free_port, wait_until

PG_ROOT = Path("/usr/lib/postgresql")


class MissingService(RuntimeError):
    """A binary the campaign needs is not installed."""

    def __init__(self, what: str, hint: str):
        self.what = what
        super().__init__(f"the fault campaign needs {what}, which is not installed: {hint}")


def postgres_bin() -> Path:
    """The newest PostgreSQL's bin directory with ``initdb`` and ``pg_ctl``."""
    found = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not found:
        raise MissingService(f"PostgreSQL server binaries ({PG_ROOT}/<major>/bin/initdb)",
                             "apt-get install postgresql")
    return found[-1]


def redis_bin() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise MissingService("redis-server", "apt-get install redis-server")
    return path


def require_binaries() -> None:
    """Raise ``MissingService`` unless both servers can be started here."""
    postgres_bin()
    redis_bin()
    if os.geteuid() == 0 and not shutil.which("runuser"):
        raise MissingService("runuser (to run PostgreSQL as 'postgres' when root)",
                             "apt-get install util-linux")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in ``workdir``; ``restart()`` is an immediate stop
    (a crash: no checkpoint, recovery from WAL on start) and a start on the same port."""

    def __init__(self, workdir: Path):
        self.bin = postgres_bin()
        self.port = free_port()
        self.data = workdir / "pgdata"
        self.log = workdir / "postgres.log"
        self.workdir = workdir

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): "
                               f"{result.stderr or result.stdout}\nlog: {self.log}")

    def init(self) -> None:
        self.workdir.chmod(0o777)  # the postgres user writes its data and log here
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")

    def start(self) -> None:
        # fsync off: a killed server loses nothing the OS already has (only a machine crash
        # would), and the campaign restarts the server, never the machine.
        options = (f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, down_seconds: float) -> None:
        self.stop("immediate")
        time.sleep(down_seconds)  # a real outage lasts: clients must see it
        self.start()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        admin = psycopg2.connect(self.url("postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # already down


class PrivateRedis:
    """A throwaway ``redis-server`` with no persistence; ``restart()`` kills it (SIGKILL:
    everything queued in it is gone) and starts an empty one on the same port."""

    def __init__(self, workdir: Path):
        self.binary = redis_bin()
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(self._answers, 30, every=0.05):
            raise RuntimeError(f"redis-server did not answer on {self.port}: see {self.log}")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self, down_seconds: float) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()
