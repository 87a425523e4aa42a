"""Waiting at scale: N runs parked at once, each in a race of a subscription (correlated by
its key) and a timer, with a 2-worker cluster. Reports the cluster's processes, threads and
resident memory with zero waiting runs (after a warm-up) and with all N parked, queued tasks
while parked, database bytes per run, and the time to drain when they all fire (half by
their timer, half by an event sent for them).

Up to ``ENGINE_PARKED`` runs are started and parked by the engine itself; beyond that (the
100,000-run case) the rest are cloned from those rows by SQL (``INSERT ... SELECT
generate_series``): parking 100k runs one step at a time would take most of the suite's
budget and measures nothing the smaller case does not.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import Cluster, aggregate, reset_runs, wait_until
from bench.scenarios.common import finished, service_start, start_many

ENGINE_PARKED = 10_000


def run(suite) -> None:
    sizes = suite.pick(quick=(200,), full=(10_000, 100_000))
    scenario = suite.report.scenario(
        "waiting", "Waiting at scale: runs parked in wait + subscribe",
        sizes=list(sizes), workers=2, engine_parked_up_to=ENGINE_PARKED,
        fire="half by timer (all due at one time), half by event (sent from 2 threads)",
        reps="1 (memory: median of 5 samples 0.5 s apart; 3 in quick mode)",
        drain_bound_s=suite.pick(120, 600))
    for size in sizes:
        _one(suite, scenario, size)


def _one(suite, scenario, size: int) -> None:
    from django_q.models import OrmQ

    from taskapp import models

    reset_runs(suite.redis_url)
    _vacuum()
    with Cluster(2, **suite.env) as cluster:
        warm = start_many(lambda i: service_start("chain10"), 20)
        finished(warm, 60)
        time.sleep(1)
        idle, bytes_before = _memory(suite, cluster), _db_bytes()
        due = time.time() + 3600  # moved to "now" once everything is parked
        parked_at = time.monotonic()
        engine = min(size, ENGINE_PARKED)
        start_many(lambda i: service_start("parked", {"key": f"k{i}", "due": due}), engine)
        assert wait_until(lambda: models.Run.objects.filter(status="waiting").count()
                          >= engine, 900), "runs did not park"
        park_seconds = time.monotonic() - parked_at
        if size > engine:
            clone_parked(engine, size)
        wait_until(lambda: not OrmQ.objects.exists(), 30)
        time.sleep(1)
        parked, bytes_after = _memory(suite, cluster), _db_bytes()
        queued = OrmQ.objects.count() + _redis_queue(suite)
        drain = _drain(suite, size)
        case = f"{size:,} parked"
        add = suite.report.add
        add(scenario, case, aggregate([{"engine_park_per_s": engine / park_seconds,
                                        "queued_while_parked": queued,
                                        "db_bytes_per_run": (bytes_after - bytes_before) / size,
                                        **drain}]),
            {"engine_park_per_s": "runs/s", "queued_while_parked": "tasks",
             "db_bytes_per_run": "B", "drain_seconds": "s", "drain_per_s": "runs/s",
             "drained": "runs"})
        add(scenario, "0 waiting (after warm-up)", idle, _MEM_UNITS)
        add(scenario, case, parked, _MEM_UNITS)
        grown = parked["rss_mib"]["median"] / idle["rss_mib"]["median"] - 1
        scenario.notes.append(f"{size:,} parked: cluster RSS {grown:+.1%} against 0 waiting; "
                              f"processes {idle['processes']['median']:.0f} → "
                              f"{parked['processes']['median']:.0f}, threads "
                              f"{idle['threads']['median']:.0f} → "
                              f"{parked['threads']['median']:.0f}")


_MEM_UNITS = {"rss_mib": "MiB", "processes": "", "threads": ""}


def _memory(suite, cluster) -> dict:
    samples = []
    for _ in range(suite.pick(3, 5)):
        tree = cluster.tree()
        samples.append({"processes": len(tree), "threads": sum(t for t, _ in tree.values()),
                        "rss_mib": sum(r for _, r in tree.values()) / 1024})
        time.sleep(suite.pick(0.2, 0.5))
    return aggregate(samples)


def _drain(suite, size: int) -> dict[str, float]:
    """Make every timer due now and send the other half's events; time until all finish."""
    from taskapp import models
    from taskapp.services import event_send

    bound = suite.pick(120, 600)
    began = time.monotonic()
    deadline = began + bound  # the bound covers sending the events too

    def send(i: int) -> None:
        if time.monotonic() < deadline:
            event_send(name="go", correlation=f"k{i}")

    make_due()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send, range(1, size, 2)))
    wait_until(lambda: models.Run.objects.filter(task_name="parked", status="succeeded")
               .count() >= size, deadline - time.monotonic(), every=0.5)
    seconds = time.monotonic() - began
    drained = models.Run.objects.filter(task_name="parked", status="succeeded").count()
    return {"drain_seconds": seconds, "drain_per_s": drained / seconds, "drained": drained}


def make_due(every_run: bool = False) -> None:
    """Every even-numbered run's timer (or every run's) comes due now (the others wait for
    their event): rewrite the stored due time, as if the clock had moved on."""
    from django.db import connection

    now = time.time()
    with connection.cursor() as cur:
        cur.execute("""
            UPDATE taskapp_run SET
              wake_at = to_timestamp(%s),
              input = jsonb_set(input, '{due}', to_jsonb(%s::float8)),
              cursor = jsonb_set(cursor, '{armed,1,due}',
                                 to_jsonb(to_char(to_timestamp(%s) AT TIME ZONE 'UTC',
                                                  'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')))
            WHERE task_name = 'parked' AND status = 'waiting'
              AND (%s OR (substr(input->>'key', 2))::int %% 2 = 0)""",
                    [now, now, now, every_run])


def clone_parked(seed: int, size: int) -> None:
    """Runs ``seed``..``size - 1``: copies of parked run k0 with their own id and key."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT id FROM taskapp_run WHERE task_name = 'parked' "
                    "AND input->>'key' = 'k0'")
        (template,) = cur.fetchone()
        cur.execute("""
            CREATE TEMP TABLE bench_clone AS
            SELECT gen_random_uuid() AS id, 'k' || i AS key
            FROM generate_series(%s, %s - 1) AS i""", [seed, size])
        cur.execute("""
            INSERT INTO taskapp_run (id, definition_id, task_name, task_version, status, state,
              state_entered_at, entry, input, data, cursor, error, metrics, idempotency_key,
              cancel_requested, created_at, start_at, finished_at, updated_at, deadline_at,
              wake_at, lease_owner, lease_expires_at, version, signal)
            SELECT c.id, definition_id, task_name, task_version, status, state,
              state_entered_at, entry, jsonb_set(input, '{key}', to_jsonb(c.key)), data,
              replace(cursor::text, '"k0"', '"' || c.key || '"')::jsonb, error, metrics, NULL,
              cancel_requested, created_at, start_at, finished_at, updated_at, deadline_at,
              wake_at, lease_owner, lease_expires_at, version, signal
            FROM bench_clone c, taskapp_run r WHERE r.id = %s""", [template])
        cur.execute("""
            INSERT INTO taskapp_subscription (name, correlation, run_id)
            SELECT s.name, c.key, c.id FROM bench_clone c, taskapp_subscription s
            WHERE s.run_id = %s""", [template])
        cur.execute("""
            INSERT INTO taskapp_transition (run_id, seq, from_state, to_state, trigger,
              condition_kind, transition_index, entry, at, time_in_state, detail)
            SELECT c.id, seq, from_state, to_state, trigger, condition_kind,
              transition_index, entry, at, time_in_state, detail
            FROM bench_clone c, taskapp_transition t WHERE t.run_id = %s""", [template])
        cur.execute("DROP TABLE bench_clone")
        cur.execute("ANALYZE taskapp_run")


def _vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE taskapp_run")


def _db_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        return cur.fetchone()[0]


def _redis_queue(suite) -> int:
    if not suite.redis_url:
        return 0
    import redis
    from django.conf import settings

    return redis.Redis.from_url(suite.redis_url).llen(
        f"django_q:{settings.Q_CLUSTER['name']}:q")
