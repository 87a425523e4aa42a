"""Waiting at scale: N runs parked at once (half on a timer, half on a subscription) with a
2-worker cluster. Reports the cluster's processes, threads and resident memory idle and with
all runs parked, queued tasks while parked, database bytes per run, the time to drain when
they all fire, and timer lag (transition committed minus due time).

    .venv/bin/python bench/waiting.py --runs 10000              # PostgreSQL (default)
    .venv/bin/python bench/waiting.py --runs 2000 --database sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import DEFAULT_PG, Cluster, scratch_database, setup_django, summary, wait_until

PARKED = """
name: parked
version: 1
start_state: parked
states:
  parked:
    transitions:
      - to: by_event
        subscribe:
          event: go
          correlate: "{{ input.key }}"
      - to: by_timer
        wait: {until: "{{ input.due }}"}
  by_event: {final: succeeded}
  by_timer: {final: succeeded}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--database", default="postgres", help="postgres | sqlite | URL")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = {"postgres": DEFAULT_PG, "sqlite": "sqlite:///x"}.get(args.database, args.database)
    url = scratch_database(base, "bench_waiting")
    setup_django(url, ASYNC_STATES_LOG_LEVEL="WARNING")
    print(json.dumps(run(args.runs, args.workers), indent=2))


def _db_bytes() -> int | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        return cur.fetchone()[0]


def run(count: int, workers: int) -> dict:
    from django_q.models import OrmQ

    from taskapp import models
    from taskapp.services import definition_load, event_send, run_start

    assert definition_load(text=PARKED, source="bench").status == "loaded"
    result: dict = {"runs": count, "workers": workers}
    with Cluster(workers=workers) as cluster:
        time.sleep(1)
        idle, bytes_before = cluster.tree(), _db_bytes()
        started = time.monotonic()
        due = time.time() + 30 + count * 0.01
        for i in range(count):
            run_start(task="parked", input={"key": f"k{i}",
                                            "due": due if i % 2 == 0 else due + 86400})
        result["start_seconds"] = round(time.monotonic() - started, 2)
        parked_all = wait_until(
            lambda: models.Run.objects.filter(status="waiting").count() >= count, 600)
        result["parked_seconds"] = round(time.monotonic() - started, 2)
        assert parked_all, "not every run parked"
        wait_until(lambda: not OrmQ.objects.exists(), 60)
        parked = cluster.tree()
        result["queued_while_parked"] = OrmQ.objects.count()
        result["cluster_idle"] = _totals(idle)
        result["cluster_parked"] = _totals(parked)
        if bytes_before is not None:
            result["db_bytes_per_run"] = round((_db_bytes() - bytes_before) / count)
        result["seconds_until_due"] = round(due - time.time(), 2)
        wait_until(lambda: time.time() >= due, 3600, every=0.05)
        fire_start = time.monotonic()
        for i in range(1, count, 2):
            event_send(name="go", correlation=f"k{i}")
        finished = wait_until(
            lambda: models.Run.objects.filter(status="succeeded").count() >= count, 1800)
        result["drain_seconds"] = round(time.monotonic() - fire_start, 2)
        result["all_finished"] = finished
        lags = [t.at.timestamp() - due for t in
                models.Transition.objects.filter(to_state="by_timer").only("at")]
        result["timer_lag_ms"] = {k: round(v * 1000, 1) if isinstance(v, float) else v
                                  for k, v in summary(lags).items()}
    return result


def _totals(tree: dict[int, tuple[int, int]]) -> dict[str, int]:
    return {"processes": len(tree), "threads": sum(t for t, _ in tree.values()),
            "rss_kib": sum(r for _, r in tree.values())}


if __name__ == "__main__":
    main()
