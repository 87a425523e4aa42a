"""``make bench``: every scenario on this machine against PostgreSQL + Redis; prints a table
and writes it as JSON to ``bench/results/<date>.json``. Nothing here asserts a time.

    .venv/bin/python -m bench.run                 # full (bounded, ~30 min)
    .venv/bin/python -m bench.run --quick         # under two minutes
    .venv/bin/python -m bench.run --only ceiling,throughput
    .venv/bin/python -m bench.run --only ceiling,step10   # the far-end latency curve
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.harness import (
    DEFAULT_PG,
    DEFAULT_REDIS,
    ROOT,
    drop_database,
    scratch_database,
    setup_django,
)
from bench.report import Report

SCENARIOS = ("ceiling", "step10", "throughput", "scale_out", "latency", "broker_events",
             "dashboard_push", "dashboard_browser", "http_overhead", "waiting", "growth",
             "hostile_templates", "takeover", "lifecycle")


@dataclass
class Suite:
    quick: bool
    report: Report
    redis_url: str
    broker: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def reps(self) -> int:
        # Quick mode keeps two, to stay under two minutes (three took 2.5 here).
        return 2 if self.quick else 3

    def pick(self, quick, full):
        return quick if self.quick else full


def machine(database_url: str) -> dict:
    import psycopg2

    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    mem_kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    redis_version = _redis_version()
    facts = {"nproc": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1), "cpu": cpu,
             "python": platform.python_version(), "postgresql": pg, "redis": redis_version,
             "kernel": platform.release(), "git": _git_head()}
    facts["summary"] = (f"{facts['nproc']} cores, {facts['memory_gib']} GiB, PostgreSQL {pg}, "
                        f"Redis {redis_version}, Python {facts['python']}, {facts['git']}")
    return facts


def _redis_version() -> str:
    import redis

    try:
        return redis.Redis.from_url(DEFAULT_REDIS).info()["redis_version"]
    except redis.RedisError as exc:
        return f"unreachable ({exc})"


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: under two minutes")
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
                        help="a PostgreSQL server URL; a scratch database is made beside it")
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--broker", choices=("redis", "orm"), default="redis")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]

    # Names of this run's own, so two runs side by side (a shared machine) do not drop each
    # other's database or share a queue.
    name = f"bench_{os.getpid()}"
    url = scratch_database(args.database, name)
    env = {"ASYNC_STATES_LOG_LEVEL": "WARNING", "DJANGO_Q_LOG_LEVEL": "WARNING",
           "Q_CLUSTER_NAME": name}
    if args.broker == "redis":
        env["REDIS_URL"] = args.redis
    setup_django(url, **env)
    env = {**env, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "async_states.settings"}
    command = "make bench" + (" QUICK=1" if args.quick else "") + (
        f"  (python -m bench.run {' '.join(argv or sys.argv[1:])})")
    report = Report(machine(url), command, "quick" if args.quick else "full")
    suite = Suite(args.quick, report, args.redis if args.broker == "redis" else "",
                  args.broker, env)
    from bench.scenarios.common import load_tasks

    load_tasks()
    try:
        failures = _run(suite, chosen)
    finally:
        drop_database(args.database, name)
    print(report.table())
    stamp = datetime.now().strftime("%Y-%m-%d-%H%M")
    path = Path(args.out) / f"{stamp}{'-quick' if args.quick else ''}.json"
    report.write(path)
    print(f"\nwritten {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if failures else 0


def _run(suite: Suite, chosen: list[str]) -> list[str]:
    import importlib

    failures = []
    for name in chosen:
        module, _, function = {"scale_out": "throughput:run_scale_out"}.get(
            name, f"{name}:run").partition(":")
        began = time.monotonic()
        print(f"-- {name} ...", flush=True)
        try:
            importlib.import_module(f"bench.scenarios.{module}" if name != "ceiling"
                                    else "bench.scenarios.ceiling").__dict__[function](suite)
        except Exception:  # one broken scenario must not hide the others' figures
            failures.append(name)
            report = suite.report.scenario(name, f"{name}: FAILED")
            report.notes.append(traceback.format_exc().strip().splitlines()[-1])
            traceback.print_exc()
        if suite.report.scenarios:
            suite.report.scenarios[-1].seconds = time.monotonic() - began
        print(f"   {name}: {time.monotonic() - began:.0f} s", flush=True)
    return failures


if __name__ == "__main__":
    sys.exit(main())
