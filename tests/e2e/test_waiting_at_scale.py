"""Waiting costs nothing: many runs parked on timers and subscriptions hold no worker, no
thread and no queued task, and every one of them completes when its timer fires or its
event arrives. (The 10,000-run version is ``bench/waiting.py``; this is its quick form.)"""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection
from django_q.models import OrmQ

from bench.harness import process_tree
from bench.scenarios.common import PARKED
from taskapp import models
from taskapp.conf import conf
from taskapp.services import event_send, run_start
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RUNS = int(os.environ.get("E2E_WAITING_RUNS", "200"))

def threads_by_process(root: int) -> dict[int, int]:
    return {pid: threads for pid, (threads, _) in process_tree(root).items()}


def test_parked_runs_hold_no_worker_and_no_thread_then_all_complete(cluster, load):
    load(PARKED)
    idle = threads_by_process(cluster.process.pid)
    due = time.time() + 15 + RUNS * 0.05
    runs = []
    for i in range(RUNS):
        by_timer = i % 2 == 0
        run, _ = run_start(task="parked", input={"key": f"k{i}", "due": due if by_timer
                                                 else due + 3600})
        runs.append((run.pk, by_timer))
    deadline = time.monotonic() + 120
    while models.Run.objects.filter(status="waiting").count() < RUNS:
        assert time.monotonic() < deadline, "runs did not all park"
        time.sleep(0.2)
    parked = threads_by_process(cluster.process.pid)
    assert sorted(parked) == sorted(idle), "a process was started for waiting runs"
    # A bounded number of threads per process, nothing per run: a worker's step pool
    # (STEP_THREADS) and condition pool (CONDITION_THREADS) are made on its first step, and
    # besides them the feeder thread multiprocessing.Queue starts on a worker's first result
    # (django-q2's result queue) and the watchdog (taskapp/watchdog.py).
    bound = conf.step_threads(connection.vendor) + int(conf.CONDITION_THREADS) + 2
    assert bound < RUNS
    grown = {pid: parked[pid] - idle[pid] for pid in idle}
    assert all(0 <= extra <= bound for extra in grown.values()), (bound, idle, parked)
    while OrmQ.objects.exists():  # the last acknowledgements may still be on their way
        assert time.monotonic() < deadline, "queued tasks left while every run waits"
        time.sleep(0.1)
    assert not models.Run.objects.exclude(lease_owner="").exists()

    for i, (_, by_timer) in enumerate(runs):
        if not by_timer:
            event_send(name="go", correlation=f"k{i}")
    for run_id, by_timer in runs:
        run = wait_for(run_id, timeout=120)
        assert (run.status, run.state) == ("succeeded", "by_timer" if by_timer else "by_event")
    fired = models.Transition.objects.filter(to_state="by_timer")
    assert fired.count() == RUNS // 2 + RUNS % 2
    lags = sorted((t.at.timestamp() - due) for t in fired)
    assert lags[0] >= 0  # never early (lateness is measured in bench/, not asserted)
