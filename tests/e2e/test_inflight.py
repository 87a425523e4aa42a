"""Many runs in flight in one worker process (``taskapp.steps``), against the real cluster:
a worker SIGKILLed with ~50 steps in flight (on 4 database connections, lent while the
calls are out) loses none and applies none twice; two workers
fed the same runs over and over drive each once; a cancel landing while a run's call is in
flight ends it at once and the call's late commit is refused."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.db.models import Count

from taskapp import dispatch, models
from taskapp.services import run_cancel, run_start
from tests.e2e.conftest import Cluster, server_environment, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

STATES = 10
_CALL = '      - http: {method: POST, url: "{{ secrets.FAR_END }}/step", json: {n: %d}}\n'
STEP10 = "name: e2e_step10\nversion: 1\nstart_state: s1\nstates:\n" + "".join(
    f"  s{i}:\n    instructions:\n{_CALL % i}    transitions:\n"
    f"      - to: {f's{i + 1}' if i < STATES else 'done'}\n"
    for i in range(1, STATES + 1)) + "  done: {final: succeeded}\n"

HELD = """
name: e2e_held
version: 1
start_state: call
states:
  call:
    instructions:
      - http: {method: POST, url: "{{ secrets.FAR_END }}/held", json: {run: "{{ run.id }}"}}
        timeout: 60s
    transitions:
      - to: done
  done: {final: succeeded}
"""

EXPECTED_PATH = [("", "s1")] + [(f"s{i}", f"s{i + 1}") for i in range(1, STATES)] + [
    (f"s{STATES}", "done")]


# Each worker's step threads share this many database connections, so a connection is lent
# and taken back around nearly every call (taskapp.dbpool).
DB_CONNECTIONS = 4


def _cluster(far_end, workers: int, threads: int) -> Cluster:
    return Cluster(server_environment(
        ASYNC_STATES_SECRET_FAR_END=far_end.url, Q_WORKERS=str(workers),
        ASYNC_STATES_STEP_THREADS=str(threads), ASYNC_STATES_LEASE_SECONDS="3",
        ASYNC_STATES_STEP_DB_CONNECTIONS=str(DB_CONNECTIONS), ASYNC_STATES_LOG_LEVEL="INFO"))


def _connections_to_this_database() -> int | None:
    """Sessions on the test database other than this test's own (None on SQLite, which has
    no sessions to count)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()")
        return cur.fetchone()[0]


def _wait(predicate, timeout: float, what: str, cluster: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    runs = list(models.Run.objects.exclude(status="succeeded").values(
        "status", "state", "crashes", "crash_error", "lease_owner", "error")[:5])
    log = "".join(cluster.output[-30:]) if cluster else ""
    raise AssertionError(f"not within {timeout}s: {what}; runs: {runs}\n{log}")


def _finished(ids: list[str]) -> bool:
    return models.Run.objects.filter(id__in=ids, finished_at__isnull=False).count() == len(ids)


def _assert_each_transition_once(ids: list[str]) -> None:
    """Every run succeeded along s1 … s10 → done, seq 1 … 11 without gap or repeat, and
    recorded exactly one successful attempt per state."""
    failed = models.Run.objects.filter(id__in=ids).exclude(status="succeeded")
    assert not failed.exists(), list(failed.values("status", "error")[:3])
    for run_id in ids:
        rows = list(models.Transition.objects.filter(run_id=run_id).order_by("seq")
                    .values_list("seq", "from_state", "to_state"))
        assert [seq for seq, _, _ in rows] == list(range(1, STATES + 2)), run_id
        assert [(a, b) for _, a, b in rows] == EXPECTED_PATH, run_id
    ok = (models.InstructionAttempt.objects.filter(run_id__in=ids, ok=True)
          .values("run_id").annotate(n=Count("id")).values_list("n", flat=True))
    assert sorted(ok) == [STATES] * len(ids)
    assert set(models.Run.objects.filter(id__in=ids).values_list("status", flat=True)) == {
        "succeeded"}


def test_a_worker_killed_with_50_steps_in_flight_loses_none_and_repeats_none(
        transactional_db, far_end, load):
    """The whole cluster is SIGKILLed (a host lost; one worker killed in a cluster that
    lives on is tests/e2e/test_worker_kill.py) while its one worker process drives ~50
    runs, each with a call in flight; a new cluster finishes them all."""
    far_end.route("/step", lambda n, r: (200, {"ok": True}, 0.2))
    load(STEP10)
    first = _cluster(far_end, workers=1, threads=60)
    first.start()
    try:
        ids = [str(run_start(task="e2e_step10")[0].pk) for _ in range(50)]
        held = models.Run.objects.filter(id__in=ids).exclude(lease_owner="")
        _wait(lambda: held.count() >= 45 and far_end.calls["/step"] >= 100, 60,
              "45 runs leased by the worker, calls under way", first)
        pids = {owner.split(":")[-3] for owner in held.values_list("lease_owner", flat=True)}
        in_flight, sessions = held.count(), _connections_to_this_database()
    finally:
        first.kill()
    assert len(pids) == 1 and in_flight >= 45  # one worker process held them all
    # ~50 calls in flight on DB_CONNECTIONS step connections, beside the cluster's own few
    # (its timer, monitor, watchdog): not one a call.
    assert sessions is None or sessions <= DB_CONNECTIONS + 8, sessions
    second = _cluster(far_end, workers=1, threads=60)
    second.start()
    try:
        _wait(lambda: _finished(ids), 90, "every run finished after the kill", second)
    finally:
        second.stop()
    _assert_each_transition_once(ids)
    # A call cut by the kill is made again (at least once, with the same idempotency key):
    # the far end heard 10 calls a run, and one more for each run cut mid-call.
    assert STATES * len(ids) <= far_end.calls["/step"] <= (STATES + 1) * len(ids)


def test_two_workers_fed_the_same_runs_over_and_over_drive_each_once(
        transactional_db, far_end, load):
    far_end.route("/step", lambda n, r: (200, {"ok": True}, 0.02))
    load(STEP10)
    cluster = _cluster(far_end, workers=2, threads=16)
    cluster.start()
    try:
        ids = [str(run_start(task="e2e_step10")[0].pk) for _ in range(40)]
        for _ in range(5):  # every run queued five more times: both workers' pools race
            dispatch.advance_many_later(ids, batch=8)
            time.sleep(0.1)
        _wait(lambda: _finished(ids), 90, "every run finished", cluster)
    finally:
        cluster.stop()
    _assert_each_transition_once(ids)
    assert far_end.calls["/step"] == STATES * len(ids)  # no call made twice


@pytest.fixture
def gate():
    opened = threading.Event()
    yield opened
    opened.set()


def test_a_cancel_landing_while_calls_are_in_flight_ends_those_runs_at_once(
        transactional_db, far_end, load, gate):
    held = []

    def hold(number: int, request: dict) -> tuple[int, object, float]:
        held.append(request["body"])
        gate.wait(60)
        return 200, {}, 0

    far_end.route("/held", hold)
    load(HELD)
    cluster = _cluster(far_end, workers=1, threads=20)
    cluster.start()
    try:
        ids = [str(run_start(task="e2e_held")[0].pk) for _ in range(20)]
        _wait(lambda: len(held) == 20, 60, "20 calls held at the far end, from one worker")
        cancelled = ids[::2]
        for run_id in cancelled:
            assert run_cancel(run_id=run_id).status == "cancelled"  # at once, call in flight
        gate.set()
        for run_id in ids[1::2]:
            assert wait_for(run_id, timeout=60).status == "succeeded"
        _wait(lambda: sum(f"run.lease_lost run={i}" in "".join(cluster.output)
                          for i in cancelled) == len(cancelled), 30,
              "every cancelled run's step refused at its commit")
    finally:
        cluster.stop()
    for run_id in cancelled:
        run = models.Run.objects.get(pk=run_id)
        assert (run.status, run.lease_owner) == ("cancelled", "")
        assert list(models.Transition.objects.filter(run_id=run_id).order_by("seq")
                    .values_list("seq", "trigger")) == [(1, "start"), (2, "cancel")]
        # The call's result came back after the cancel: its commit was refused.
        assert not models.InstructionAttempt.objects.filter(run_id=run_id).exists()


def test_a_recycled_worker_finishes_its_steps_in_flight_before_it_exits(
        transactional_db, far_end, load):
    """django-q2 retires each worker after 3 tasks (``Q_RECYCLE``) while its pool still has
    runs mid-call: the process's exit waits for them, so no step is cut short — no call
    is made twice, no lease is lost, every run goes on in one step."""
    far_end.route("/step", lambda n, r: (200, {"ok": True}, 0.1))
    load(STEP10)
    env = server_environment(
        ASYNC_STATES_SECRET_FAR_END=far_end.url, Q_WORKERS="2", Q_RECYCLE="3",
        ASYNC_STATES_STEP_THREADS="8", ASYNC_STATES_LEASE_SECONDS="3",
        ASYNC_STATES_LOG_LEVEL="INFO", DJANGO_Q_LOG_LEVEL="INFO")
    cluster = Cluster(env)
    cluster.start()
    try:
        ids = [str(run_start(task="e2e_step10")[0].pk) for _ in range(24)]
        _wait(lambda: _finished(ids), 90, "every run finished", cluster)
    finally:
        cluster.stop()
    log = "".join(cluster.output)
    assert log.count("recycled worker") >= 4  # 24 tasks, 3 a worker
    assert "run.lease_lost" not in log and "run.step_failed" not in log
    _assert_each_transition_once(ids)
    assert far_end.calls["/step"] == STATES * len(ids)  # no step cut short and redone
