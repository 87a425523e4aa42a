"""Timer lag on the embedded default (SQLite + django-q2's ORM broker, 2 workers): N waits
due at a steady rate; lag is the committed transition's time minus the due time. The suite
(`make bench`) measures PostgreSQL + Redis; this is the same measurement for `make run`'s
default set-up.

    .venv/bin/python bench/embedded_timers.py 600 20     # 600 timers due at 20 per second
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (  # noqa: E402
    Cluster,
    scratch_database,
    setup_django,
    summary,
    wait_until,
)
from bench.scenarios.common import TIMED  # noqa: E402


def main(count: int, rate: float) -> dict:
    setup_django(scratch_database("sqlite:///x", "bench_timers_sqlite"),
                 ASYNC_STATES_LOG_LEVEL="WARNING")
    from taskapp import models
    from taskapp.services import definition_load, run_start

    assert definition_load(text=TIMED, source="bench").status == "loaded"
    with Cluster(workers=2):
        first = time.time() + 20 + count * 0.03  # every run parked before the first is due
        dues = {}
        for i in range(count):
            run, _ = run_start(task="timed", input={"due": first + i / rate})
            dues[run.pk] = first + i / rate
        wait_until(lambda: models.Run.objects.filter(status="succeeded").count() >= count,
                   first - time.time() + count / rate + 120)
        fired = models.Transition.objects.filter(to_state="fired").values_list("run_id", "at")
        lags = [(at.timestamp() - dues[run_id]) * 1000 for run_id, at in fired]
    return {"database": "sqlite", "broker": "orm", "workers": 2, "runs": count,
            "rate_per_s": rate, "lag_ms": {k: round(v, 1) for k, v in summary(lags).items()},
            "over_250ms": sum(lag > 250 for lag in lags)}


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(int(args[0]) if args else 600, float(args[1]) if len(args) > 1
                          else 20.0), indent=2))
