"""An event is stored, then its subscribers are signalled in a second transaction (so a run
arming concurrently is never missed). When the second never commits, the event must still
reach its run: the client's retry, or else the timer's sweep, finishes the job."""

from __future__ import annotations

import pytest

from taskapp import models
from taskapp.services import event_send, events_rewake, run_advance, run_start
from taskapp.services import events as events_module
from tests.taskapp.services.test_runs import ORDER

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def parked_run(load_task, clock):
    load_task(ORDER)
    run, _ = run_start(task="order", input={"order_id": "W1"})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "awaiting_payment" and run.signal == 0
    return run


@pytest.fixture
def wake_fails_once(monkeypatch):
    """The database goes away between the event's commit and the wake-up's."""
    original, calls = events_module._wake_subscribers, []

    def flaky(event):
        calls.append(event.pk)
        if len(calls) == 1:
            raise ConnectionError("the database went away")
        return original(event)

    monkeypatch.setattr(events_module, "_wake_subscribers", flaky)
    return calls


def test_a_sent_event_is_marked_woken_with_its_subscribers_signalled(parked_run, clock):
    event, created = event_send(name="payment.received", correlation="W1", key="k1")
    parked_run.refresh_from_db()
    assert created and parked_run.signal == 1
    assert models.Event.objects.get(pk=event.pk).woken_at == clock.now()


def test_an_event_without_subscribers_is_marked_woken_too(db, clock):
    event, _ = event_send(name="nobody.listens", correlation="x")
    assert models.Event.objects.get(pk=event.pk).woken_at is not None
    assert events_rewake(now=clock.now()) == 0


def test_a_retry_of_an_event_whose_wake_up_failed_wakes_the_run(
        parked_run, clock, wake_fails_once):
    with pytest.raises(ConnectionError):
        event_send(name="payment.received", correlation="W1", payload={"amount": 3}, key="p")
    stored = models.Event.objects.get(key="p")
    assert stored.woken_at is None
    parked_run.refresh_from_db()
    assert parked_run.signal == 0  # stored, but nobody was told

    _, created = event_send(name="payment.received", correlation="W1", key="p")
    assert not created  # the same event, not a second one
    parked_run.refresh_from_db()
    assert parked_run.signal == 1
    run_advance(run_id=parked_run.pk)
    parked_run.refresh_from_db()
    assert parked_run.state == "paid" and parked_run.data["payment"] == {"amount": 3}


def test_the_timer_wakes_the_run_of_an_event_nobody_retried(parked_run, clock, wake_fails_once):
    with pytest.raises(ConnectionError):
        event_send(name="payment.received", correlation="W1", key="q")
    assert events_rewake(now=clock.now()) == 0  # within the grace period: maybe in flight
    clock.advance(3)
    assert events_rewake(now=clock.now()) == 1
    parked_run.refresh_from_db()
    assert parked_run.signal == 1
    assert models.Event.objects.get(key="q").woken_at is not None
    assert events_rewake(now=clock.now()) == 0  # once
