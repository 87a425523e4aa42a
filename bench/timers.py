"""Timer lag under normal load: N waits due at spread times (a steady rate of due timers),
fired by a 2-worker cluster. Lag is the committed transition's time minus the due time.

    .venv/bin/python bench/timers.py --runs 1000 --rate 20            # PostgreSQL
    .venv/bin/python bench/timers.py --runs 500 --rate 20 --database sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import DEFAULT_PG, Cluster, scratch_database, setup_django, summary, wait_until

TIMED = """
name: timed
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: fired
        wait: {until: "{{ input.due }}"}
  fired: {final: succeeded}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="timers due per second")
    parser.add_argument("--database", default="postgres", help="postgres | sqlite | URL")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = {"postgres": DEFAULT_PG, "sqlite": "sqlite:///x"}.get(args.database, args.database)
    setup_django(scratch_database(base, "bench_timers"), ASYNC_STATES_LOG_LEVEL="WARNING")
    print(json.dumps(run(args.runs, args.rate, args.workers), indent=2))


def run(count: int, rate: float, workers: int) -> dict:
    from taskapp import models
    from taskapp.services import definition_load, run_start

    assert definition_load(text=TIMED, source="bench").status == "loaded"
    with Cluster(workers=workers):
        first_due = time.time() + 20 + count * 0.02
        dues = {}
        for i in range(count):
            run, _ = run_start(task="timed", input={"due": first_due + i / rate})
            dues[run.pk] = first_due + i / rate
        done = wait_until(lambda: models.Run.objects.filter(status="succeeded").count()
                          >= count, first_due - time.time() + count / rate + 120)
        fired = models.Transition.objects.filter(to_state="fired").values_list("run_id", "at")
        lags = [(at.timestamp() - dues[run_id]) * 1000 for run_id, at in fired]
    stats = {k: round(v, 1) if isinstance(v, float) else v for k, v in summary(lags).items()}
    return {"runs": count, "rate_per_s": rate, "workers": workers, "all_fired": done,
            "timer_lag_ms": stats, "late_over_250ms": sum(1 for lag in lags if lag > 250)}


if __name__ == "__main__":
    main()
