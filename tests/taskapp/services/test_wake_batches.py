"""Runs that come due together are dispatched in batches, many run ids to a queued task
(taskapp/dispatch.py, services/wakeups.py, services/runs.runs_advance)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from taskapp import dispatch, models
from taskapp.services import run_advance, run_start, runs_advance, wakeups_fire

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NAP = """
name: nap
version: 1
start_state: napping
states:
  napping:
    transitions:
      - to: awake
        wait: 1m
  awake: {final: succeeded}
"""


def _queue(**extra):
    return override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "queue",
                                           **extra})


@pytest.fixture
def napping(load_task, clock):
    """``napping(n)``: n runs parked on a one-minute timer, then the clock moved past it."""
    load_task(NAP)

    def make(count: int) -> list[str]:
        ids = []
        for _ in range(count):
            run, _ = run_start(task="nap", input={})
            run_advance(run_id=run.pk)
            ids.append(str(run.pk))
        clock.advance(61)
        return ids

    return make


@pytest.fixture
def sent(monkeypatch):
    """What would have gone to django-q2: one list of run ids per queued task."""
    tasks: list[list[str]] = []
    monkeypatch.setattr(dispatch, "_enqueue", lambda run_id: tasks.append([run_id]))
    monkeypatch.setattr(dispatch, "_enqueue_many", tasks.append)
    monkeypatch.setattr(dispatch, "queue_depth", lambda: 0)
    return tasks


@pytest.mark.parametrize("due, batch, sizes", [
    (1, 16, [1]), (16, 16, [16]), (17, 16, [9, 8]), (33, 16, [11, 11, 11]), (5, 1, [1] * 5)])
def test_a_burst_goes_out_in_even_batches_in_wake_up_order(
        napping, sent, clock, django_capture_on_commit_callbacks, due, batch, sizes):
    ids = napping(due)
    with _queue(WAKE_BATCH=batch), django_capture_on_commit_callbacks(execute=True):
        fired = wakeups_fire(now=clock.now())
    assert sorted(fired) == sorted(ids)
    assert [len(task) for task in sent] == sizes
    assert sorted(i for task in sent for i in task) == sorted(ids)
    firsts = [task[0] for task in sent]
    assert firsts == fired[:len(sent)]  # the earliest due lead their batches


def test_back_pressure_counts_tasks_each_worth_a_batch(napping, sent, clock, monkeypatch,
                                                       django_capture_on_commit_callbacks):
    napping(10)
    monkeypatch.setattr(dispatch, "queue_depth", lambda: 9)
    with _queue(WAKE_BATCH=4, TIMER_MAX_QUEUE=10), \
            django_capture_on_commit_callbacks(execute=True):
        fired = wakeups_fire(now=clock.now())
    assert len(fired) == 4 and [len(task) for task in sent] == [4]


def test_a_batch_steps_every_run_even_when_one_fails(napping, monkeypatch):
    from taskapp.services import runs as service

    ids = napping(3)
    real = service.run_advance

    def flaky(*, run_id):
        if run_id == ids[1]:
            raise RuntimeError("the database went away for this one")
        return real(run_id=run_id)

    monkeypatch.setattr(service, "run_advance", flaky)
    assert runs_advance(run_ids=ids) == 3
    statuses = {str(pk): status for pk, status in models.Run.objects.values_list("id", "status")}
    assert [statuses[i] for i in ids] == [
        "succeeded", "waiting", "succeeded"]


def test_a_batch_past_its_time_queues_the_rest(napping, sent,
                                               django_capture_on_commit_callbacks):
    ids = napping(5)
    with _queue(WAKE_BATCH=2, WAKE_BATCH_SECONDS=0), \
            django_capture_on_commit_callbacks(execute=True):
        assert runs_advance(run_ids=ids) == 1
    assert models.Run.objects.get(id=ids[0]).status == "succeeded"
    assert sorted(i for task in sent for i in task) == sorted(ids[1:])
    assert [len(task) for task in sent] == [2, 2]
