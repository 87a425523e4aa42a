"""Cancel against the real cluster when the step never completes: a far end that does not
answer holds the worker, the lease passes to the next worker, and cancel still ends the run
at once; the stuck steps' late commits are refused."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from taskapp import models
from taskapp.services import run_cancel, run_start
from tests.e2e.conftest import path_of, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HANGS = """
name: e2e_hangs
version: 1
start_state: call
states:
  call:
    instructions:
      - name: never
        http: {url: "{{ secrets.FAR_END }}/never"}
        timeout: 60s
        save_as: reply
    transitions:
      - to: done
  done: {final: succeeded}
"""

QUICK = """
name: e2e_quick
version: 1
start_state: a
states:
  a:
    transitions:
      - to: done
  done: {final: succeeded}
"""


@pytest.fixture
def answer():
    """Set to let the far end answer at last (at teardown in any case)."""
    gate = threading.Event()
    yield gate
    gate.set()


def test_cancel_ends_a_run_whose_step_never_completes(cluster, far_end, load, answer):
    far_end.route("/never", lambda n, r: (200, {"late": answer.wait(90)}, 0))
    load(HANGS)
    load(QUICK)
    run, _ = run_start(task="e2e_hangs")
    deadline = time.monotonic() + 20
    while far_end.calls["/never"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the 3 s lease ran out and a second worker is stuck too
    assert far_end.calls["/never"] == 2, "the lease never passed to the second worker"

    began = time.monotonic()
    cancelled = run_cancel(run_id=run.pk)
    took = time.monotonic() - began
    assert cancelled.status == "cancelled" and took < 5, took
    assert cancelled.lease_owner == "" and cancelled.wake_at is None

    answer.set()  # the far end answers both stuck steps; each tries to commit
    deadline = time.monotonic() + 30
    refused = f"run.lease_lost run={run.pk}"
    while (sum(refused in line for line in cluster.output) < 2
           and time.monotonic() < deadline):
        time.sleep(0.05)
    assert sum(refused in line for line in cluster.output) == 2, "".join(cluster.output[-30:])

    run = models.Run.objects.get(pk=run.pk)
    assert run.status == "cancelled" and "reply" not in run.data
    assert path_of(run) == [("", "call", "start"), ("call", "", "cancel")]
    assert not models.InstructionAttempt.objects.filter(run=run).exists()

    quick, _ = run_start(task="e2e_quick")  # the workers are free again
    assert wait_for(quick.pk, timeout=20).status == "succeeded"


def test_a_run_whose_workers_keep_dying_fails_after_max_step_crashes(
        cluster, far_end, load, answer):
    """Each step of the run hangs on the far end and its worker is SIGKILLed there, or the
    lease runs out and the next worker takes it over: after three such steps, the next
    claim fails the run instead of handing it on."""
    far_end.route("/never", lambda n, r: (200, {"late": answer.wait(90)}, 0))
    load(HANGS)
    run, _ = run_start(task="e2e_hangs")
    killed: set[int] = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        row = models.Run.objects.get(pk=run.pk)
        if row.status == "failed":
            break
        pid = int(row.lease_owner.split(":")[1]) if row.lease_owner else None
        if pid and pid not in killed and far_end.calls["/never"] >= row.crashes:
            os.kill(pid, signal.SIGKILL)  # the worker dies mid-instruction
            killed.add(pid)
        time.sleep(0.05)
    run = models.Run.objects.get(pk=run.pk)
    assert run.status == "failed", (run.status, run.crashes, far_end.calls["/never"])
    assert path_of(run) == [("", "call", "start"), ("call", "", "error")]
    assert run.error["code"] == "step_crashes" and run.error["limit"] == 3
    assert run.error["crashes"] >= 3 and "MAX_STEP_CRASHES=3" in run.error["message"]
    assert 3 <= far_end.calls["/never"] <= run.error["crashes"]
    assert (run.lease_owner, run.wake_at, run.crashes) == ("", None, 0)
