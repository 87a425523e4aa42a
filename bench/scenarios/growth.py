"""Growth: time per transition and run-list latency with 10k, 100k and 1M finished runs in
history. History is made by bulk SQL (``INSERT ... SELECT generate_series``), not by the
engine: 1M runs through the engine would take over an hour here. Each history run is a
finished ``history`` run (1% failed in ``charge``, the rest succeeded in ``done``) with 3
Transition rows, created one second apart going back in time from now, with a time-ordered
(version 7) id as the engine makes them (engine/ids.py).

Per size: chain10 throughput (2 workers, service starts) and ``GET /api/runs/`` latency for
a common filter (``status=succeeded&state=done``: most of history matches), a rare one
(``status=failed&state=charge``: 1%), the rare status alone, and task with status.
"""

from __future__ import annotations

import time

from bench.harness import Cluster, WebServer, percentile, repeat, reset_runs
from bench.scenarios.common import RestClient, api_available, api_token, service_start, throughput

HISTORY = """
name: history
version: 1
start_state: a
states:
  a: {transitions: [{to: charge}]}
  charge: {transitions: [{to: done}]}
  done: {final: succeeded}
"""

FILTERS = {"common (succeeded, done)": {"status": "succeeded", "state": "done"},
           "rare (failed, charge)": {"status": "failed", "state": "charge"},
           "status only (failed)": {"status": "failed"},
           "task + status (history, failed)": {"task": "history", "status": "failed"}}
CHUNK = 100_000


def run(suite) -> None:
    from taskapp.services import definition_load

    sizes = suite.pick(quick=(10_000,), full=(10_000, 100_000, 1_000_000))
    runs = suite.pick(quick=30, full=1000)
    requests = suite.pick(quick=10, full=50)
    scenario = suite.report.scenario(
        "growth", "Growth: per-transition time and list latency against history size",
        sizes=list(sizes), throughput_runs=runs, workers=2, list_requests_per_rep=requests,
        page_size=50, reps=suite.reps, history="bulk SQL inserts; VACUUM ANALYZE after each",
        filters=list(FILTERS))
    definition = definition_load(text=HISTORY, source="bench").definition
    reset_runs(suite.redis_url)
    missing = api_available()
    server = None if missing else WebServer(**suite.env).__enter__()
    try:
        made = 0
        for size in sizes:
            made = _grow(definition.pk, made, size)
            _measure(suite, scenario, size, runs, requests, server, missing)
    finally:
        if server:
            server.__exit__()


def _measure(suite, scenario, size, runs, requests, server, missing) -> None:
    case = f"{size:,} in history"
    with Cluster(2, **suite.env):
        stats = repeat(suite.reps, lambda: throughput(lambda i: service_start("chain10"),
                                                       runs, timeout=300))
    suite.report.add(scenario, case, stats,
                     {"ms_per_transition": "ms", "transitions_per_s": "/s"},
                     throughput=("transitions_per_s",))
    for label, params in FILTERS.items():
        if missing:
            suite.report.unavailable(scenario, f"{case}, list {label}", "p99_ms", missing)
            continue
        client = RestClient(server.url, api_token())
        stats = repeat(suite.reps, _list, client, params, requests)
        suite.report.add(scenario, f"{case}, list {label}", stats,
                         {"p50_ms": "ms", "p99_ms": "ms"})


def _list(client: RestClient, params: dict[str, str], count: int) -> dict[str, float]:
    client.list(**params)  # warm: connection, plan cache
    times = [client.list(**params) * 1000 for _ in range(count)]
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def _grow(definition_id: int, made: int, size: int) -> int:
    """Add finished history runs numbered ``made``..``size - 1``; returns ``size``."""
    from django.db import connection

    began = time.monotonic()
    for lo in range(made, size, CHUNK):
        hi = min(size, lo + CHUNK)
        with connection.cursor() as cur:
            cur.execute(_INSERT, {"definition": definition_id, "lo": lo, "hi": hi})
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE taskapp_run")
        cur.execute("VACUUM ANALYZE taskapp_transition")
    print(f"   history: {made:,} → {size:,} runs in {time.monotonic() - began:.0f} s",
          flush=True)
    return size


_INSERT = """
WITH new AS (
  INSERT INTO taskapp_run (id, definition_id, task_name, task_version, status, state,
    state_entered_at, entry, input, data, cursor, error, metrics, idempotency_key,
    cancel_requested, created_at, start_at, finished_at, updated_at, deadline_at, wake_at,
    lease_owner, lease_expires_at, version, signal, crashes, crash_error, claimed_at)
  SELECT encode(set_byte(overlay(uuid_send(gen_random_uuid()) PLACING
           substring(int8send((extract(epoch FROM t) * 1000)::bigint) FROM 3 FOR 6)
           FROM 1 FOR 6), 6, (get_byte(uuid_send(gen_random_uuid()), 6) & 15) | 112),
         'hex')::uuid, %(definition)s, 'history', 1,
    CASE WHEN i %% 100 = 0 THEN 'failed' ELSE 'succeeded' END,
    CASE WHEN i %% 100 = 0 THEN 'charge' ELSE 'done' END,
    t + interval '1 second', 3, jsonb_build_object('n', i), '{"ok": true}', '{}', NULL, '{}',
    NULL, false, t, NULL, t + interval '1 second', t + interval '1 second', NULL, NULL, '',
    NULL, 4, 0, 0, '', NULL
  FROM (SELECT i, now() - interval '1 minute' - i * interval '1 second' AS t
        FROM generate_series(%(lo)s, %(hi)s - 1) AS i) AS g
  RETURNING id, created_at
)
INSERT INTO taskapp_transition (run_id, seq, from_state, to_state, trigger, condition_kind,
  transition_index, entry, at, time_in_state, detail)
SELECT new.id, s, (ARRAY['', 'a', 'charge'])[s], (ARRAY['a', 'charge', 'done'])[s],
  CASE WHEN s = 1 THEN 'start' ELSE 'condition' END, CASE WHEN s = 1 THEN '' ELSE 'always' END,
  CASE WHEN s = 1 THEN NULL ELSE 0 END, s, new.created_at + s * interval '0.3 second', 0.3, '{}'
FROM new, generate_series(1, 3) AS s
"""
