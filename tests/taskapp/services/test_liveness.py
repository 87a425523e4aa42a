"""Cluster liveness: a dead cluster's leases are found by its id and taken over once; a live
or merely judged-too-early cluster keeps its runs; a holder that was only slow is refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db.models import F

from taskapp import liveness, models
from taskapp.services import run_advance, run_start
from taskapp.services import runs as runs_module
from taskapp.services.heartbeats import cluster_heartbeat
from taskapp.services.liveness import cluster_leave, clusters_recover_host, clusters_take_over

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TWO_STEPS = """
name: two_steps
version: 1
start_state: first
states:
  first:
    instructions:
      - set: {n: 1}
    transitions:
      - to: second
  second:
    instructions:
      - http: {method: GET, url: "http://127.0.0.1:9/never"}
    transitions:
      - to: done
  done: {final: succeeded}
"""

PARKED = """
name: parked
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: done
        wait: 1h
  done: {final: succeeded}
"""


def _held(run, clock, owner: str):
    expires = clock.now() + timedelta(seconds=60)
    models.Run.objects.filter(pk=run.pk).update(lease_owner=owner, lease_expires_at=expires,
                                                wake_at=expires, version=F("version") + 1)
    return models.Run.objects.get(pk=run.pk)


def _beat(owner: str, clock, seconds_ago: float) -> None:
    cluster_heartbeat(owner=owner, started_at=clock.now() - timedelta(hours=1),
                      now=clock.now() - timedelta(seconds=seconds_ago))


@pytest.fixture
def runs(load_task, clock):
    load_task(PARKED)
    return [run_start(task="parked")[0] for _ in range(3)]


def test_a_silent_clusters_runs_are_released_once_and_others_kept(runs, clock):
    dead, alive, mine = runs
    before = _held(dead, clock, "deadc0de01/h:1:aa:1")
    _held(alive, clock, "a11ve00001/h:2:bb:1")
    _held(mine, clock, "m1ne000001/h:3:cc:1")
    _beat("h:1/deadc0de01", clock, seconds_ago=3.0)
    _beat("h:2/a11ve00001", clock, seconds_ago=1.0)
    _beat("h:3/m1ne000001", clock, seconds_ago=60)  # the caller itself is never judged
    healthy = clock.now() - timedelta(hours=1)

    assert clusters_take_over(own="h:3/m1ne000001", healthy_since=healthy) == [str(dead.pk)]
    assert clusters_take_over(own="h:3/m1ne000001", healthy_since=healthy) == []

    after = models.Run.objects.get(pk=dead.pk)
    assert (after.lease_owner, after.lease_expires_at, after.version) == (
        "", None, before.version + 1)
    assert after.wake_at == clock.now() + timedelta(seconds=30)  # the dispatch's backstop
    owners = dict(models.Run.objects.values_list("pk", "lease_owner"))
    assert owners[alive.pk].startswith("a11ve00001/")
    assert owners[mine.pk].startswith("m1ne000001/")
    assert set(models.ClusterHeartbeat.objects.values_list("owner", flat=True)) == {
        "h:2/a11ve00001", "h:3/m1ne000001"}


def test_nobody_is_judged_until_the_judge_itself_has_beaten_for_long_enough(runs, clock):
    _held(runs[0], clock, "deadc0de01/h:1:aa:1")
    _beat("h:1/deadc0de01", clock, seconds_ago=10)
    # The judge's own beats resumed 2 s ago (after an outage of the database, say): the
    # silent cluster may have been as cut off as the judge was.
    recent = clock.now() - timedelta(seconds=2)
    assert clusters_take_over(own="h:3/m1ne000001", healthy_since=recent) == []
    assert models.Run.objects.get(pk=runs[0].pk).lease_owner.startswith("deadc0de01/")
    clock.advance(1.5)
    assert clusters_take_over(own="h:3/m1ne000001", healthy_since=recent) == [str(runs[0].pk)]


@pytest.mark.django_db(transaction=True)
def test_two_judges_at_once_take_a_dead_cluster_over_once(runs, clock):
    for run in runs:
        _held(run, clock, "deadc0de01/h:1:aa:1")
    _beat("h:1/deadc0de01", clock, seconds_ago=5)
    healthy = clock.now() - timedelta(hours=1)
    taken, barrier = [], threading.Barrier(2)

    def judge(own: str) -> None:
        from django.db import connection

        try:
            barrier.wait()
            taken.append(clusters_take_over(own=own, healthy_since=healthy))
        finally:
            connection.close()

    threads = [threading.Thread(target=judge, args=(f"h:{i}/judge0000{i}",)) for i in (7, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(t) for t in taken) == [0, 3]


def test_leaving_releases_the_clusters_own_runs(runs, clock):
    _held(runs[0], clock, "m1ne000001/h:3:cc:1")
    _beat("h:3/m1ne000001", clock, seconds_ago=0)
    assert cluster_leave(owner="h:3/m1ne000001") == [str(runs[0].pk)]
    assert not models.ClusterHeartbeat.objects.exists()
    assert models.Run.objects.get(pk=runs[0].pk).lease_owner == ""


def test_a_restarted_cluster_recovers_its_dead_predecessors_on_this_host(runs, clock):
    gone, running, same_pid = runs
    _held(gone, clock, "g0ne000001/h:41:aa:1")
    _held(running, clock, "runn000001/h:42:bb:1")
    _held(same_pid, clock, "samep00001/h:7:cc:1")
    for owner in ("h:41/g0ne000001", "h:42/runn000001", "h:7/samep00001",
                  "other:41/elsewhere1"):
        _beat(owner, clock, seconds_ago=0)  # fresh: no silence to wait for
    taken = clusters_recover_host(own="h:7/n3w0000001", alive=lambda pid: pid == 42)
    assert sorted(taken) == sorted([str(gone.pk), str(same_pid.pk)])
    assert set(models.ClusterHeartbeat.objects.values_list("owner", flat=True)) == {
        "h:42/runn000001", "other:41/elsewhere1"}


@pytest.fixture
def in_cluster(monkeypatch):
    """This test process as a worker of a cluster: its own id and shared beat record."""
    monkeypatch.setenv(liveness.ENV, "unset")
    monkeypatch.setattr(liveness, "_shared", None)
    monkeypatch.setattr(runs_module, "_local", threading.local())
    return liveness.cluster_begin()


def test_a_slow_holder_taken_over_mid_step_commits_nothing(load_task, clock, in_cluster,
                                                           monkeypatch):
    load_task(TWO_STEPS)
    run, _ = run_start(task="two_steps")
    _beat(liveness.heartbeat_owner("h", 1), clock, seconds_ago=10)
    from taskapp.services import store as store_module

    original = store_module.DjangoRunStore.commit

    def judged_dead_then_commit(self, snapshot, **kwargs):
        assert self.owner.startswith(f"{in_cluster}/")
        clusters_take_over(own="h:2/judge00002", healthy_since=clock.now() - timedelta(1))
        return original(self, snapshot, **kwargs)

    monkeypatch.setattr(store_module.DjangoRunStore, "commit", judged_dead_then_commit)
    assert run_advance(run_id=run.pk) is None
    assert not models.Transition.objects.filter(run=run).exists()
    assert models.Run.objects.get(pk=run.pk).lease_owner == ""


def test_a_worker_whose_cluster_is_silent_calls_nothing_and_lets_the_run_go(
        load_task, clock, in_cluster):
    load_task(TWO_STEPS)
    run, _ = run_start(task="two_steps")
    liveness.beat_recorded(clock.now().timestamp() - 2.5)  # past CLUSTER_FENCE_SECONDS
    assert run_advance(run_id=run.pk) is None
    after = models.Run.objects.get(pk=run.pk)
    # The step got as far as the call: what came before it is committed, the call never
    # started, and the run waits CLUSTER_DEAD_SECONDS for a cluster that is alive.
    assert list(models.Transition.objects.filter(run=run).order_by("seq")
                .values_list("to_state", flat=True)) == ["first", "second"]
    assert not models.InstructionAttempt.objects.filter(run=run, kind="http").exists()
    assert (after.lease_owner, after.wake_at) == ("", clock.now() + timedelta(seconds=2.5))


def test_fence_follows_the_last_committed_beat(monkeypatch):
    monkeypatch.setenv(liveness.ENV, "unset")
    monkeypatch.setattr(liveness, "_shared", None)
    assert not liveness.fenced()  # outside a cluster: never
    liveness.cluster_begin()
    liveness.beat_recorded(1000.0)
    assert not liveness.fenced(now=1001.5)
    assert liveness.fenced(now=1001.51)


def test_owners_parse_old_and_new_forms():
    assert liveness.parse_owner("web-1:812/0123456789") == ("web-1", 812, "0123456789")
    assert liveness.parse_owner("web-1:812") == ("web-1", 812, "")
    assert liveness.parse_owner("garbage") == ("", None, "")


@pytest.mark.parametrize(("beat", "fence", "dead", "ok"), [
    (0.5, 1.5, 2.5, True), (0.5, 2.5, 2.5, False), (1.5, 1.5, 2.5, False),
    (0.0, 1.5, 2.5, False), (0.5, 4.0, 2.5, False)])
def test_liveness_thresholds_must_nest(settings, beat, fence, dead, ok):
    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "CLUSTER_BEAT_SECONDS": beat,
                             "CLUSTER_FENCE_SECONDS": fence, "CLUSTER_DEAD_SECONDS": dead}
    problem = liveness.thresholds_problem()
    assert (problem is None) == ok
    if not ok:
        assert "CLUSTER_FENCE_SECONDS" in problem and f"{fence}" in problem


def test_a_timer_that_was_silent_itself_waits_before_judging_others(runs, clock):
    from taskapp.timer import TimerThread

    _held(runs[0], clock, "deadc0de01/h:1:aa:1")
    _beat("h:1/deadc0de01", clock, seconds_ago=60)
    timer = TimerThread()
    clock.advance(10)  # the judge's own first beat comes 10 s after it started: a gap

    def beat() -> None:
        timer._beaten = 0.0  # the interval is real time; the fake clock moves instead
        timer._heartbeat()

    beat()
    assert timer.healthy_since == clock.now() and timer.taken_over == 0
    for _ in range(6):  # 2.4 s of regular beats: still within CLUSTER_DEAD_SECONDS
        clock.advance(0.4)
        beat()
    assert timer.taken_over == 0
    clock.advance(0.4)
    beat()
    assert timer.taken_over == 1
    assert models.Run.objects.get(pk=runs[0].pk).lease_owner == ""


def test_a_dead_workers_runs_are_taken_over_and_live_workers_kept(runs, clock):
    from taskapp.services.liveness import cluster_workers_reap

    dead, alive, other_cluster = runs
    _held(dead, clock, "m1ne000001/h:41:aa:1")
    _held(alive, clock, "m1ne000001/h:42:bb:1")
    _held(other_cluster, clock, "0ther00001/h:41:cc:1")
    versions = {r.pk: models.Run.objects.get(pk=r.pk).version for r in runs}
    taken = cluster_workers_reap(cluster="m1ne000001", alive=lambda pid: pid != 41)
    assert taken == [str(dead.pk)]
    after = {r.pk: models.Run.objects.get(pk=r.pk) for r in runs}
    assert after[dead.pk].lease_owner == "" and after[dead.pk].version == versions[dead.pk] + 1
    assert after[alive.pk].lease_owner == "m1ne000001/h:42:bb:1"
    assert after[other_cluster.pk].lease_owner == "0ther00001/h:41:cc:1"
    assert cluster_workers_reap(cluster="m1ne000001", alive=lambda pid: pid != 41) == []


def test_a_lease_owner_that_cannot_be_read_is_left_to_its_lease(runs, clock):
    from taskapp.services.liveness import cluster_workers_reap

    _held(runs[0], clock, "m1ne000001/garbled")
    assert cluster_workers_reap(cluster="m1ne000001", alive=lambda pid: False) == []
    assert cluster_workers_reap(cluster="", alive=lambda pid: False) == []


def test_a_dead_clusters_runs_are_not_charged_a_crash_but_a_dead_workers_are(runs, clock):
    """A whole cluster going is its host's doing, not its runs': their claims are taken
    back. One worker dying inside a live cluster may be a poison run's doing: its runs
    keep the count, and their next step is alone (taskapp/isolation.py)."""
    from taskapp.services.liveness import cluster_workers_reap

    dead, reaped, _ = runs
    for run, owner in ((dead, "deadc0de01/h:1:aa:1"), (reaped, "a11ve00001/h:2:bb:1")):
        _held(run, clock, owner)
        models.Run.objects.filter(pk=run.pk).update(crashes=1)  # what the claim counted
    _beat("h:1/deadc0de01", clock, seconds_ago=3.0)
    clusters_take_over(own="h:3/m1ne000001", healthy_since=clock.now() - timedelta(hours=1))
    assert cluster_workers_reap(cluster="a11ve00001", alive=lambda pid: False) == [
        str(reaped.pk)]
    assert models.Run.objects.get(pk=dead.pk).crashes == 0
    assert models.Run.objects.get(pk=reaped.pk).crashes == 1
