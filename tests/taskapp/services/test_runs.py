"""Runs through the service layer on the real database: rows, history, exclusion."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from taskapp import models
from taskapp.services import (
    InputInvalid,
    RunConflict,
    RunNotFound,
    TaskNotFound,
    event_send,
    run_advance,
    run_cancel,
    run_redrive,
    run_start,
    wakeups_fire,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ORDER = """
name: order
version: 1
start_state: awaiting_payment
input_schema:
  type: object
  required: [order_id]
  properties: {order_id: {type: string}}
states:
  awaiting_payment:
    instructions:
      - set: {status: waiting}
    transitions:
      - to: paid
        subscribe:
          event: payment.received
          correlate: "{{ input.order_id }}"
          save_as: payment
      - to: expired
        wait: 1h
  paid:
    transitions:
      - to: shipped
        wait: 10s
  shipped: {final: succeeded}
  expired: {final: failed}
"""


def _path(run):
    return list(models.Transition.objects.filter(run=run).order_by("seq")
                .values_list("from_state", "to_state", "trigger"))


def test_start_validates_input_and_finds_the_task(load_task, clock):
    load_task(ORDER)
    with pytest.raises(InputInvalid, match="order_id"):
        run_start(task="order", input={})
    with pytest.raises(TaskNotFound):
        run_start(task="nope")
    with pytest.raises(TaskNotFound):
        run_start(task="order", version=9, input={"order_id": "A"})


def test_the_same_idempotency_key_returns_the_same_run(load_task, clock):
    load_task(ORDER)
    first, created = run_start(task="order", input={"order_id": "A"}, idempotency_key="k1")
    again, created_again = run_start(task="order", input={"order_id": "A"}, idempotency_key="k1")
    assert created and not created_again and first.pk == again.pk
    assert models.Run.objects.count() == 1


def test_a_run_waits_for_its_event_then_finishes(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "A1"})
    outcome = run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and run.state == "awaiting_payment"
    assert run.wake_at == outcome.wake_at == run.state_entered_at + timedelta(hours=1)
    assert list(run.subscriptions.values_list("name", "correlation")) == [
        ("payment.received", "A1")]
    assert run.lease_owner == ""

    event, created = event_send(name="payment.received", correlation="A1",
                                payload={"amount": 5}, key="pay-1")
    assert created
    run.refresh_from_db()
    assert run.signal == 1  # and a worker was dispatched (none in these tests)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "paid" and run.data["payment"] == {"amount": 5}
    assert not run.subscriptions.exists()
    assert list(event.consumptions.values_list("run_id", flat=True)) == [run.pk]

    clock.advance(10)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.finished_at is not None and run.wake_at is None
    assert _path(run) == [("", "awaiting_payment", "start"),
                          ("awaiting_payment", "paid", "condition"),
                          ("paid", "shipped", "condition")]
    assert list(models.Transition.objects.filter(run=run).values_list("seq", flat=True)) == [
        1, 2, 3]


def test_an_event_sent_before_the_run_subscribes_is_kept_and_duplicates_ignored(
        load_task, clock):
    load_task(ORDER)
    event_send(name="payment.received", correlation="B2", payload={"n": 1}, key="e1")
    _, dup = event_send(name="payment.received", correlation="B2", payload={"n": 2}, key="e1")
    assert not dup and models.Event.objects.count() == 1
    run, _ = run_start(task="order", input={"order_id": "B2"})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "paid" and run.data["payment"] == {"n": 1}


def test_an_expired_event_is_not_delivered(load_task, clock):
    load_task(ORDER)
    event_send(name="payment.received", correlation="C3", ttl=5)
    clock.advance(6)
    run, _ = run_start(task="order", input={"order_id": "C3"})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "awaiting_payment"


def test_events_to_a_finished_or_unknown_run_are_refused(load_task, clock):
    load_task(ORDER)
    with pytest.raises(RunNotFound):
        event_send(name="x", run_id="00000000-0000-0000-0000-000000000000")
    run, _ = run_start(task="order", input={"order_id": "D"})
    run_cancel(run_id=run.pk)
    run_advance(run_id=run.pk)
    with pytest.raises(RunConflict):
        event_send(name="x", run_id=run.pk)


def test_a_leased_run_is_not_advanced_by_a_second_worker(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "E"})
    models.Run.objects.filter(pk=run.pk).update(
        lease_owner="other", lease_expires_at=clock.now() + timedelta(seconds=30))
    assert run_advance(run_id=run.pk) is None
    assert not models.Transition.objects.filter(run=run).exists()
    clock.advance(31)  # the other worker died: its lease expires and the run is taken over
    assert run_advance(run_id=run.pk) is not None
    assert _path(run) == [("", "awaiting_payment", "start")]


def test_a_claimed_run_lost_mid_step_writes_nothing_more(load_task, clock, monkeypatch):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "F"})
    from taskapp.services import store as store_module

    original = store_module.DjangoRunStore.commit

    def steal_then_commit(self, snapshot, **kwargs):
        models.Run.objects.filter(pk=run.pk).update(lease_owner="thief")
        return original(self, snapshot, **kwargs)

    monkeypatch.setattr(store_module.DjangoRunStore, "commit", steal_then_commit)
    assert run_advance(run_id=run.pk) is None
    assert not models.Transition.objects.filter(run=run).exists()


def test_timers_fire_due_runs_once(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "G"})
    run_advance(run_id=run.pk)
    assert wakeups_fire(now=clock.now()) == []
    clock.advance(3600)
    assert wakeups_fire(now=clock.now()) == [str(run.pk)]
    assert wakeups_fire(now=clock.now()) == []  # pushed back until the step claims it
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.state == "expired"


def test_cancel_then_redrive_from_a_chosen_state(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "H"})
    run_advance(run_id=run.pk)
    run_cancel(run_id=run.pk)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "cancelled"
    with pytest.raises(RunConflict):
        run_cancel(run_id=run.pk)
    with pytest.raises(RunConflict):
        run_redrive(run_id=run.pk, state="nowhere")
    run_redrive(run_id=run.pk, state="paid")
    run.refresh_from_db()
    assert run.status == "running" and run.state == "paid" and not run.cancel_requested
    clock.advance(10)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert [t[2] for t in _path(run)] == ["start", "cancel", "redrive", "condition"]


def test_scheduled_start_waits_for_its_time(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "I"},
                       start_at=clock.now() + timedelta(minutes=5))
    assert run_advance(run_id=run.pk) is None
    clock.advance(300)
    assert wakeups_fire(now=clock.now()) == [str(run.pk)]
    assert run_advance(run_id=run.pk) is not None


@pytest.mark.django_db(transaction=True)
def test_racing_workers_apply_each_transition_once(load_task, clock):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race is shown on PostgreSQL and in e2e")
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "J"})
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        run_advance(run_id=run.pk)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _path(run) == [("", "awaiting_payment", "start")]


def test_an_event_arriving_during_a_step_is_taken_before_the_worker_lets_go(
        load_task, clock, monkeypatch):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "K"})
    from taskapp.services import store as store_module

    original, sent = store_module.DjangoRunStore.commit, []

    def event_arrives_before_release(self, snapshot, **kwargs):
        if kwargs.get("release") and not sent:  # the run is about to park and let go
            sent.append(event_send(name="payment.received", correlation="K", key="k-1"))
        return original(self, snapshot, **kwargs)

    monkeypatch.setattr(store_module.DjangoRunStore, "commit", event_arrives_before_release)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "paid" and run.lease_owner == ""
    assert _path(run) == [("", "awaiting_payment", "start"),
                          ("awaiting_payment", "paid", "condition")]


def test_a_step_that_crashes_gives_the_run_back_for_a_later_retry(load_task, clock,
                                                                   monkeypatch):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "L"})
    from engine.runner import Runner

    def crash(self, snapshot):
        raise RuntimeError("bug")

    monkeypatch.setattr(Runner, "advance", crash)
    with pytest.raises(RuntimeError):
        run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.lease_owner == "" and run.wake_at > clock.now()
    monkeypatch.undo()
    assert run_advance(run_id=run.pk) is not None


def test_each_commit_moves_updated_at(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "M"})
    clock.advance(5)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.updated_at == run.state_entered_at == clock.now()


def test_the_timer_holds_back_while_the_queue_is_deep(load_task, clock, monkeypatch,
                                                    django_capture_on_commit_callbacks):
    from taskapp import dispatch

    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "N"})
    run_advance(run_id=run.pk)
    clock.advance(3600)
    sent = []
    monkeypatch.setattr(dispatch, "_enqueue", sent.append)
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "queue",
                                         "TIMER_MAX_QUEUE": 10}):
        monkeypatch.setattr(dispatch, "queue_depth", lambda: 10)
        assert wakeups_fire(now=clock.now()) == []
        monkeypatch.setattr(dispatch, "queue_depth", lambda: 9)
        with django_capture_on_commit_callbacks(execute=True):
            assert wakeups_fire(now=clock.now()) == [str(run.pk)]
    assert sent == [str(run.pk)]
