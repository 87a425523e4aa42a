"""A burst of timers: N runs parked on a timer (and a subscription), all due at the same
moment, on PostgreSQL + Redis with a 2-worker cluster; the seconds until every one has
finished, for each ``WAKE_BATCH`` (runs per queued task) given, alternating, in one run of
this script so their ratio is read on one machine state.

    .venv/bin/python bench/timer_burst.py 5000 1 16 1 16
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    DEFAULT_PG,
    Cluster,
    drop_database,
    reset_runs,
    scratch_database,
    setup_django,
    wait_until,
)

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
DATABASE = f"bench_burst_{os.getpid()}"


def main(count: int, batches: list[int]) -> None:
    url = scratch_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG), DATABASE)
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS, "Q_CLUSTER_NAME": DATABASE,
           "ASYNC_STATES_LOG_LEVEL": "WARNING"}
    setup_django(url, **env)
    from bench.scenarios.common import load_tasks

    load_tasks()
    try:
        for batch in batches:
            seconds = _burst(count, {**env, "ASYNC_STATES_WAKE_BATCH": str(batch)})
            print(f"WAKE_BATCH={batch:>3}  {count:,} timers due at once: drained in "
                  f"{seconds:.1f} s = {count / seconds:,.0f} runs/s", flush=True)
    finally:
        drop_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG), DATABASE)


def _burst(count: int, env: dict[str, str]) -> float:
    from bench.scenarios import waiting
    from bench.scenarios.common import service_start
    from taskapp import models

    reset_runs(REDIS)
    with Cluster(2, **env):
        service_start("parked", {"key": "k0", "due": time.time() + 3600})
        assert wait_until(lambda: models.Run.objects.filter(status="waiting").count() == 1, 30)
        waiting.clone_parked(1, count)
        waiting.make_due(every_run=True)
        began = time.monotonic()
        done = wait_until(lambda: models.Run.objects.filter(status="succeeded").count() >= count,
                          600, every=0.2)
        seconds = time.monotonic() - began
    if not done:
        finished = models.Run.objects.filter(status="succeeded").count()
        raise SystemExit(f"not drained in 600 s: {finished:,} of {count:,}")
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(int(sys.argv[1]), [int(b) for b in sys.argv[2:]])
