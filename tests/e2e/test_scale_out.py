"""Scale-out: three cluster processes, each its own process group as if on its own host,
share one PostgreSQL and one Redis. Under load (runs that call a far end, wait on a timer
and take an event) one whole cluster is SIGKILLed mid-load, and every run still finishes
with a history that shows it was driven by one worker at a time:

- each run's path is exactly start → call → pause → hear → done, seq 1..4, so no transition
  was applied twice and the timer fired once (one transition out of ``pause``);
- a ``set`` counter in the run's data, bumped in each of three states, ends at 3: two
  workers committing the same state would leave it out of step with the history;
- the far end saw no two calls of the same run in flight at once (each call is held 100 ms):
  a run driven by two workers at a time would overlap there. A repeated call is allowed —
  instructions are at-least-once across a crash — but never a concurrent one.

The load comes from a driver subprocess with the clusters' environment (the Redis broker):
this test process's settings were read without ``REDIS_URL``, so it only observes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
from django.conf import settings
from django.db import connection

from bench.harness import process_tree
from taskapp import models
from tests.e2e.conftest import ROOT, Cluster, database_url
from tests.services import require_service

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RUNS = int(os.environ.get("E2E_SCALE_OUT_RUNS", "240"))
REDIS_URL = "redis://127.0.0.1:6379/7"
# One queue for the three clusters, named for this test process: two test sessions on one
# Redis must not take (and fail to verify) each other's tasks.
QUEUE = f"scale_out_{os.getpid()}"
# Seconds the far end holds each call: longer than a timer tick plus a Redis pickup, so a
# second worker taking the run while the first is still calling would overlap there.
HOLD = 0.1

SCALED = """
name: scaled
version: 1
start_state: call
states:
  call:
    instructions:
      - http: {method: POST, url: "{{ secrets.FAR_END }}/call", json: {run: "{{ run.id }}"}}
      - set: {n: 1}
    transitions:
      - to: pause
  pause:
    instructions:
      - set: {n: "{{ data.n + 1 }}"}
    transitions:
      - to: hear
        wait: {until: "{{ input.due }}"}
  hear:
    instructions:
      - http: {method: POST, url: "{{ secrets.FAR_END }}/hear", json: {run: "{{ run.id }}"}}
      - set: {n: "{{ data.n + 1 }}"}
    transitions:
      - to: done
        subscribe: {event: go, correlate: "{{ input.key }}"}
  done: {final: succeeded}
"""

# Starts the runs over ~3 s (timers due 3-6 s later), sends half the events at once (they
# wait, buffered, for their run), the other half once the timers are due (live delivery).
DRIVER = """
import json, sys, time
import django
django.setup()
from taskapp.services import event_send, run_start
count = int(sys.argv[1])
began = time.time()
for i in range(count):
    run_start(task="scaled", input={"key": f"k{i}", "due": time.time() + 3 + (i % 30) / 10})
    time.sleep(max(0.0, began + 3 * (i + 1) / count - time.time()))
for i in range(0, count, 2):
    event_send(name="go", correlation=f"k{i}")
time.sleep(max(0.0, began + 9 - time.time()))
for i in range(1, count, 2):
    event_send(name="go", correlation=f"k{i}")
print("driver done", flush=True)
"""


class Calls:
    """The far end's record: each call's run and its [start, end) in monotonic time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.keys: dict[str, int] = defaultdict(int)

    def handler(self, number: int, request: dict) -> tuple[int, object, float]:
        began = time.monotonic()
        time.sleep(HOLD)
        run = json.loads(request["body"])["run"]
        with self.lock:
            self.spans[run].append((began, time.monotonic()))
            self.keys[request["headers"].get("Idempotency-Key", "")] += 1
        return 200, {"ok": True}, 0

    def overlapping(self) -> list[str]:
        bad = []
        for run, spans in self.spans.items():
            ordered = sorted(spans)
            if any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False)):
                bad.append(run)
        return bad


def _redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).delete(f"django_q:{QUEUE}:q")


@pytest.fixture
def env(transactional_db, far_end) -> dict[str, str]:
    if connection.vendor != "postgresql":
        pytest.skip("scale-out needs PostgreSQL (SKIP LOCKED, concurrent writers); "
                    "SQLite serialises every write")
    require_service("Redis at 127.0.0.1:6379", _redis)
    environment = {
        "ASYNC_STATES_SECRET_FAR_END": far_end.url,
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "async_states.settings",
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "REDIS_URL": REDIS_URL,
        "Q_CLUSTER_NAME": QUEUE,  # one shared queue for the three clusters
        "Q_WORKERS": "2",
        "ASYNC_STATES_LEASE_SECONDS": "3",
        "ASYNC_STATES_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    environment.pop("TEST_DATABASE_NAME", None)
    return environment


def _owner_cluster(clusters: list[Cluster]) -> Cluster | None:
    """A cluster one of whose workers holds a run's lease right now."""
    pids = {int(owner.split(":")[1]) for owner in
            models.Run.objects.exclude(lease_owner="").values_list("lease_owner", flat=True)}
    for cluster in clusters:
        if pids & set(process_tree(cluster.process.pid)):
            return cluster
    return None


def test_three_clusters_drive_each_run_once_and_survive_a_killed_one(env, far_end, load):
    load(SCALED)
    calls = Calls()
    far_end.route("/call", calls.handler)
    far_end.route("/hear", calls.handler)
    clusters = [Cluster(env) for _ in range(3)]
    try:
        for cluster in clusters:
            cluster.start()
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(RUNS)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        victim, deadline = None, time.monotonic() + 20
        while victim is None and time.monotonic() < deadline:
            if models.Run.objects.count() >= RUNS // 3:
                victim = _owner_cluster(clusters)
            time.sleep(0.01)
        assert victim is not None, "no cluster held a lease during the load"
        leased = models.Run.objects.exclude(lease_owner="").count()
        victim.kill()  # the whole process group: a host lost mid-load
        output, _ = driver.communicate(timeout=60)
        assert driver.returncode == 0, output
        unfinished = _wait_all_finished(timeout=70)
    finally:
        for cluster in clusters:
            cluster.stop()
        _redis()
    assert not calls.overlapping(), f"runs called concurrently: {calls.overlapping()[:5]}"
    assert not unfinished, f"{len(unfinished)} runs unfinished (state, status): {unfinished[:5]}"
    _check_histories()
    assert sum(calls.keys.values()) >= 2 * RUNS
    print(f"killed one of 3 clusters with {leased} runs leased; repeated calls: "
          f"{sum(n - 1 for n in calls.keys.values())}")


def _wait_all_finished(timeout: float) -> list[tuple[str, str]]:
    """(state, status) of the runs still unfinished when every run finished or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
            models.Run.objects.filter(finished_at__isnull=True).exists()
            or models.Run.objects.count() < RUNS):
        time.sleep(0.2)
    return list(models.Run.objects.filter(finished_at__isnull=True).values_list("state",
                                                                                "status"))


def _check_histories() -> None:
    expected = [("", "call"), ("call", "pause"), ("pause", "hear"), ("hear", "done")]
    paths = defaultdict(list)
    for run_id, seq, frm, to in models.Transition.objects.order_by("run_id", "seq") \
            .values_list("run_id", "seq", "from_state", "to_state"):
        paths[run_id].append((seq, frm, to))
    runs = models.Run.objects.values_list("id", "status", "data", "lease_owner")
    assert len(runs) == RUNS
    for run_id, status, data, owner in runs:
        path = paths[run_id]
        assert [seq for seq, _, _ in path] == [1, 2, 3, 4], (run_id, path)
        assert [(frm, to) for _, frm, to in path] == expected, (run_id, path)
        assert (status, data.get("n"), owner) == ("succeeded", 3, ""), (run_id, status, data)
