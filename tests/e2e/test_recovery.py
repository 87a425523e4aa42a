"""Recovery in seconds, with the real cluster: a SIGKILLed cluster's runs are taken over by
a live one (or by its own restart) long before their lease or backstop would pass, and a
cluster sent SIGTERM on its whole process group is gone within a bound — nothing lost,
nothing applied twice.

Leases here are the default 60 s and the backstop 30 s: the bounds asserted (15 s, generous
on a shared machine) can only be met by the liveness takeover.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from taskapp import models
from taskapp.services import run_start
from tests.e2e.conftest import Cluster, server_environment

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# Each call is held this long, so a killed cluster's workers are caught mid-call.
HOLD = 0.8
MOVE_ON_BOUND = 15.0
GRACE = 4.0
GONE_BOUND = GRACE + 10.0

CALLING = """
name: calling
version: 1
start_state: one
states:
  one:
    instructions:
      - http: {method: POST, url: "{{ secrets.FAR_END }}/call", json: {run: "{{ run.id }}"}}
    transitions:
      - to: two
  two:
    instructions:
      - http: {method: POST, url: "{{ secrets.FAR_END }}/call", json: {run: "{{ run.id }}"}}
    transitions:
      - to: done
  done: {final: succeeded}
"""
EXPECTED = [("", "one"), ("one", "two"), ("two", "done")]


class Calls:
    """Each call's run and its [start, end): two workers driving one run would overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def handler(self, number: int, request: dict) -> tuple[int, object, float]:
        began = time.monotonic()
        time.sleep(HOLD)
        with self.lock:
            self.spans[json.loads(request["body"])["run"]].append((began, time.monotonic()))
        return 200, {"ok": True}, 0

    def overlapping(self) -> list[str]:
        return [run for run, spans in self.spans.items()
                if any(b[0] < a[1] for a, b in zip(sorted(spans), sorted(spans)[1:],
                                                   strict=False))]


@pytest.fixture
def env(transactional_db, far_end):
    calls = Calls()
    far_end.route("/call", calls.handler)
    environment = server_environment(ASYNC_STATES_SECRET_FAR_END=far_end.url, Q_WORKERS="3",
                                     ASYNC_STATES_SHUTDOWN_GRACE_SECONDS=str(GRACE))
    for name in ("ASYNC_STATES_LEASE_SECONDS", "ASYNC_STATES_CLUSTER_ID"):
        environment.pop(name, None)
    return environment, calls


def _cluster_id(cluster: Cluster) -> str:
    """The liveness id of a running cluster, from its heartbeat row (``host:pid/id``)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for owner in models.ClusterHeartbeat.objects.values_list("owner", flat=True):
            where, _, cluster_id = owner.partition("/")
            if where.endswith(f":{cluster.process.pid}"):
                return cluster_id
        time.sleep(0.05)
    raise AssertionError("the cluster never beat")


def _held_by(cluster_id: str) -> dict[str, int]:
    """Run id -> transitions so far, of the runs the cluster's workers hold now."""
    held = models.Run.objects.filter(lease_owner__startswith=f"{cluster_id}/")
    return {str(run.pk): models.Transition.objects.filter(run=run).count() for run in held}


def _wait_holding(cluster_id: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not _held_by(cluster_id):
        assert time.monotonic() < deadline, "the cluster never held a run"
        time.sleep(0.02)


def _start_until_held(cluster_id: str, batch: int = 4, most: int = 24) -> int:
    """Start runs, a few at a time, until the cluster holds one (the two clusters share the
    queue, and the other may take a whole batch); returns how many were started. At most
    ``most``: within the survivor's capacity, so a run taken over is not queued behind
    others."""
    started = 0
    while True:
        for _ in range(batch):
            run_start(task="calling")
        started += batch
        try:
            _wait_holding(cluster_id, timeout=3.0)
            return started
        except AssertionError:
            if started >= most:
                raise


def _moved_on(held: dict[str, int], since: float) -> dict[str, float]:
    """Seconds from ``since`` until each held run committed its next transition."""
    moved: dict[str, float] = {}
    deadline = since + MOVE_ON_BOUND + 30
    while len(moved) < len(held) and time.monotonic() < deadline:
        for run_id, count in held.items():
            if run_id not in moved and models.Transition.objects.filter(
                    run_id=run_id).count() > count:
                moved[run_id] = time.monotonic() - since
        time.sleep(0.05)
    return moved


def _all_finished(count: int, timeout: float) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
            models.Run.objects.filter(finished_at__isnull=True).exists()
            or models.Run.objects.count() < count):
        time.sleep(0.2)
    return list(models.Run.objects.filter(finished_at__isnull=True)
                .values_list("state", "status"))


def _check_histories(count: int) -> None:
    paths = defaultdict(list)
    for run_id, seq, frm, to in models.Transition.objects.order_by("run_id", "seq") \
            .values_list("run_id", "seq", "from_state", "to_state"):
        paths[run_id].append((seq, frm, to))
    runs = list(models.Run.objects.values_list("id", "status", "lease_owner"))
    assert len(runs) == count
    for run_id, status, owner in runs:
        path = paths[run_id]
        assert [seq for seq, _, _ in path] == [1, 2, 3], (run_id, path)
        assert [(frm, to) for _, frm, to in path] == EXPECTED, (run_id, path)
        assert (status, owner) == ("succeeded", ""), (run_id, status, owner)


def test_a_killed_clusters_runs_move_on_within_seconds_on_a_live_one(env, load):
    environment, calls = env
    load(CALLING)
    victim, survivor = Cluster(environment), Cluster(environment)
    try:
        victim.start()
        survivor.start()
        victim_id = _cluster_id(victim)
        runs = _start_until_held(victim_id)
        victim.kill()
        killed_at = time.monotonic()
        held = _held_by(victim_id)  # once it is dead: what it held cannot change
        moved = _moved_on(held, killed_at)
        unfinished = _all_finished(runs, timeout=60)
    finally:
        victim.kill()
        survivor.stop()
    assert held and set(moved) == set(held), f"runs held by the dead cluster never moved: {held}"
    assert max(moved.values()) < MOVE_ON_BOUND, moved
    assert not unfinished, unfinished
    assert not calls.overlapping(), calls.overlapping()
    _check_histories(runs)
    print(f"held {len(held)} runs; moved on after {sorted(moved.values())} s")


def test_a_restarted_cluster_takes_its_predecessors_runs_over_at_start(env, load):
    environment, _ = env
    load(CALLING)
    cluster, runs = Cluster(environment), 6
    try:
        cluster.start()
        first_id = _cluster_id(cluster)
        for _ in range(runs):
            run_start(task="calling")
        _wait_holding(first_id)
        cluster.kill()
        held = _held_by(first_id)
        restarted = time.monotonic()
        cluster.start()
        moved = _moved_on(held, restarted)
        unfinished = _all_finished(runs, timeout=60)
    finally:
        cluster.stop()
    assert held and set(moved) == set(held), (held, moved)
    assert max(moved.values()) < MOVE_ON_BOUND, moved
    assert not unfinished, unfinished
    _check_histories(runs)


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def test_sigterm_to_the_whole_group_under_load_ends_every_process_in_bounded_time(env, load):
    environment, calls = env
    load(CALLING)
    cluster, runs, rounds = Cluster(environment), 30, 5
    took = []
    try:
        for i in range(rounds):
            cluster.start()
            run_start(task="calling")
            if i == 0:
                for _ in range(runs - rounds):
                    run_start(task="calling")
            _wait_holding(_cluster_id(cluster))
            pgid = cluster.process.pid
            began = time.monotonic()
            os.killpg(pgid, signal.SIGTERM)  # what systemd sends by default
            while _group(pgid) and time.monotonic() - began < GONE_BOUND + 20:
                time.sleep(0.05)
            took.append(time.monotonic() - began)
            left = _group(pgid)
            if left:
                os.killpg(pgid, signal.SIGKILL)
            assert not left, f"round {i}: processes {left} alive {took[-1]:.1f} s after SIGTERM"
            cluster.process.wait(timeout=5)
        cluster.start()
        unfinished = _all_finished(runs, timeout=90)
    finally:
        cluster.stop()
    assert max(took) < GONE_BOUND, took
    assert not unfinished, unfinished
    assert not calls.overlapping(), calls.overlapping()
    _check_histories(runs)
    print(f"SIGTERM to the group: every process gone after {[round(t, 2) for t in took]} s")
