"""step10: runs whose 10 states each make one HTTP POST to a far end in its own process that
answers after 0, 50 or 200 ms; steps (instruction calls) per second end to end, with 2
cluster workers and ``STEP_THREADS`` run steps in flight per worker. Beside each figure: the
blocking bound (workers ÷ latency: what one run at a time per worker could reach) and, in
the same run, chain10 (no instructions) against the psycopg2 ceiling.

    .venv/bin/python -m bench.run --only ceiling,step10 [--quick]

Each column is a pool configuration, ``STEP_THREADS/STEP_DB_CONNECTIONS`` per worker:
``1/1`` is one run at a time per worker (the engine before the pool), ``16/16`` a thread
per connection (the pool before connections were lent during calls). Set
``BENCH_STEP10_POOLS`` (e.g. ``16/16,64/8``) to measure others.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench.harness import Cluster, _Process, free_port, repeat, reset_runs
from bench.scenarios.common import finished, service_start, start_many, throughput

STATES = 10
WORKERS = 2
_CALL = '      - http: {method: POST, url: "{{ secrets.FAR }}/step", json: {step: %d}}\n'
# s1 … s10, one POST each, then done: 10 calls and 11 transitions a run.
STEP10 = "name: step10\nversion: 1\nstart_state: s1\nstates:\n" + "".join(
    f"  s{i}:\n    instructions:\n{_CALL % i}    transitions:\n"
    f"      - to: {f's{i + 1}' if i < STATES else 'done'}\n"
    for i in range(1, STATES + 1)) + "  done: {final: succeeded}\n"

UNITS = {"steps_per_s": "/s", "blocking_bound": "/s", "cluster_cpu_ms_per_step": "ms",
         "postgres_cpu_ms_per_step": "ms", "seconds": "s", "unfinished": ""}


class FarEndProcess(_Process):
    """``python -m bench.far_end`` on a free port, answering after ``latency`` seconds."""

    ready_line = "far end listening"

    def __init__(self, latency: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "bench.far_end", "--port", str(self.port),
                        "--latency", str(latency)]
        super().__init__()


def run(suite) -> None:
    from taskapp.services import definition_load

    definition_load(text=STEP10, source="bench")
    latencies = (0.0, 0.05, 0.2)
    pools = _pools(suite)
    scenario = suite.report.scenario(
        "step10", "step10: 10 HTTP calls a run, far end latency 0 / 50 / 200 ms, steps/s",
        task="step10 (10 states, one POST each)", workers=WORKERS,
        pools=[f"{t}/{c}" for t, c in pools], latencies_ms=[int(x * 1000) for x in latencies],
        reps=suite.reps, broker=suite.broker, started_via="service, 4 threads",
        measured="InstructionAttempt rows / (last Transition.at - first start)")
    for threads, connections in pools:
        env = {**suite.env, "ASYNC_STATES_STEP_THREADS": str(threads),
               "ASYNC_STATES_STEP_DB_CONNECTIONS": str(connections)}
        pool = f"{threads}/{connections}"
        with Cluster(WORKERS, **env):
            stats = repeat(suite.reps, lambda: _chain10(suite))
            suite.report.add(scenario, f"chain10, pool {pool}", stats,
                             {"transitions_per_s": "/s"}, throughput=("transitions_per_s",))
        for latency in latencies:
            with FarEndProcess(latency) as far, Cluster(
                    WORKERS, **env, ASYNC_STATES_SECRET_FAR=far.url) as cluster:
                stats = repeat(suite.reps, _once, suite, cluster, threads, latency)
            suite.report.add(scenario, f"{int(latency * 1000)} ms, pool {pool}",
                             stats, UNITS, throughput=("steps_per_s",))


def _pools(suite) -> list[tuple[int, int]]:
    """(STEP_THREADS, STEP_DB_CONNECTIONS) configurations to measure, in order."""
    given = os.environ.get("BENCH_STEP10_POOLS")
    if given:
        return [(int(t), int(c)) for t, c in (p.split("/") for p in given.split(","))]
    return list(suite.pick(quick=((16, 16), (64, 8)),
                           full=((1, 1), (16, 16), (32, 8), (64, 8), (128, 8))))


def _chain10(suite) -> dict[str, float]:
    reset_runs(suite.redis_url)
    return throughput(lambda i: service_start("chain10"), suite.pick(100, 400),
                      timeout=120, threads=4)


def _runs_for(suite, threads: int, latency: float) -> int:
    """Runs enough for several seconds at the rate this configuration can reach at most."""
    reachable = min(WORKERS * threads / (latency + 0.01), 600.0)
    seconds = suite.pick(4.0, 6.0)
    return max(8, min(int(reachable * seconds / STATES), 600))


def _cpu_seconds(pids) -> float:
    """User + system CPU time of these processes so far (/proc; gone ones count 0)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _postgres_backends() -> list[int]:
    """The server processes serving this database (the scratch one: only this run's)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cur.fetchall()]


def _once(suite, cluster: Cluster, threads: int, latency: float) -> dict[str, float]:
    from django.db.models import Max

    from taskapp import models

    reset_runs(suite.redis_url)
    runs = _runs_for(suite, threads, latency)
    workers, backends = list(cluster.tree()), _postgres_backends()
    cpu = _cpu_seconds(workers), _cpu_seconds(backends)
    began = time.time()
    ids = start_many(lambda i: service_start("step10"), runs, threads=4)
    done = finished(ids, timeout=300)
    # Connections opened meanwhile (new step threads) are missed: read after a warm-up rep.
    used = (_cpu_seconds(workers) - cpu[0], _cpu_seconds(backends) - cpu[1])
    steps = models.InstructionAttempt.objects.filter(run_id__in=ids, ok=True).count()
    last = models.Transition.objects.filter(run_id__in=ids).aggregate(m=Max("at"))["m"]
    elapsed = last.timestamp() - began
    return {"steps_per_s": steps / elapsed, "seconds": elapsed,
            "cluster_cpu_ms_per_step": 1000 * used[0] / max(steps, 1),
            "postgres_cpu_ms_per_step": 1000 * used[1] / max(steps, 1),
            "blocking_bound": WORKERS / latency if latency else float("nan"),
            "unfinished": 0 if done else runs - models.Run.objects.filter(
                id__in=ids, finished_at__isnull=False).count()}
