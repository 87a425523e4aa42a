"""The pool of run steps of a worker process (``taskapp.steps``): back-pressure, a batch
that gives up on a full pool, and every step in flight seen by the watchdog."""

from __future__ import annotations

import threading

import pytest

from taskapp import steps
from taskapp.conf import conf
from taskapp.services import workers


@pytest.fixture
def blocked(monkeypatch):
    """``run_advance`` replaced by a step that waits for ``release`` (and notes its run)."""
    release, began, lock = threading.Event(), [], threading.Lock()

    def advance(*, run_id):
        workers.step_began(run_id)
        with lock:
            began.append(run_id)
        try:
            release.wait(10)
        finally:
            workers.step_ended()

    monkeypatch.setattr(steps.services, "run_advance", advance)
    yield release, began
    release.set()


def _wait(predicate) -> None:
    done = threading.Event()
    for _ in range(1000):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("not within 10 s")


def test_a_full_pool_takes_no_more_runs_until_a_step_ends(blocked):
    release, began = blocked
    pool = steps.StepPool(3)
    assert all(pool.submit(f"r{i}") for i in range(3))
    _wait(lambda: len(began) == 3)
    assert pool.in_flight() == 3
    assert pool.submit("r3", timeout=0.05) is False  # full: back-pressure, nothing taken
    release.set()
    assert pool.drain(10)
    assert pool.submit("r4", timeout=1)
    assert pool.drain(10)
    assert sorted(began) == ["r0", "r1", "r2", "r4"]


def test_every_step_in_flight_is_known_and_the_oldest_is_reported(blocked):
    release, began = blocked
    pool = steps.StepPool(4)
    for run_id in ("a", "b", "c"):
        pool.submit(run_id)
        _wait(lambda run_id=run_id: run_id in began)
    assert workers.steps_in_flight() == 3
    assert workers.current_step().run_id == "a"
    release.set()
    assert pool.drain(10)
    assert workers.steps_in_flight() == 0 and workers.current_step() is None


def test_a_batch_hands_back_what_a_full_pool_could_not_take(blocked, monkeypatch):
    release, began = blocked
    monkeypatch.setattr(steps, "_pools", {})
    monkeypatch.setattr(conf, "step_threads", lambda vendor: 2)
    taken = steps.steps_submit(["a", "b", "c", "d"], give_up_after=0.1)
    assert taken == 2
    release.set()
    assert steps.pool().drain(10)
    assert sorted(began) == ["a", "b"]


def test_a_failing_step_frees_its_thread(monkeypatch):
    def crash(*, run_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(steps.services, "run_advance", crash)
    pool = steps.StepPool(1)
    for run_id in ("a", "b", "c"):
        assert pool.submit(run_id, timeout=5)
    assert pool.drain(10)


@pytest.mark.parametrize(("setting", "vendor", "threads"), [
    (None, "sqlite", 4), (None, "postgresql", 64), (32, "postgresql", 32), (0, "sqlite", 1)])
def test_step_threads_default_by_database(settings, setting, vendor, threads):
    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "STEP_THREADS": setting}
    assert conf.step_threads(vendor) == threads


@pytest.mark.parametrize(("setting", "vendor", "connections"), [
    (None, "sqlite", 4), (None, "postgresql", 8), (2, "postgresql", 2), (0, "sqlite", 1)])
def test_step_db_connections_default_by_database(settings, setting, vendor, connections):
    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "STEP_DB_CONNECTIONS": setting}
    assert conf.step_db_connections(vendor) == connections


def test_a_task_finding_the_pool_full_queues_its_runs_again(blocked, monkeypatch, settings):
    """The django-q2 task never waits on a full pool past WAKE_BATCH_SECONDS (django-q2
    would kill the worker, and its steps in flight, at its task timeout)."""
    from taskapp import tasks

    release, began = blocked
    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "WAKE_BATCH_SECONDS": 0.1}
    monkeypatch.setattr(steps, "_pools", {})
    monkeypatch.setattr(conf, "step_threads", lambda vendor: 1)
    queued = []
    monkeypatch.setattr(tasks.dispatch, "advance_many_later",
                        lambda ids, batch: queued.append(list(ids)))
    monkeypatch.setattr(tasks.services, "worker_recycle_due", lambda: False)
    tasks.advance_run("a")
    tasks.advance_run("b")  # the one thread is busy with a
    assert tasks.advance_runs(["c", "d"]) == 0
    assert queued == [["b"], ["c", "d"]]
    release.set()
    assert steps.pool().drain(10) and began == ["a"]
