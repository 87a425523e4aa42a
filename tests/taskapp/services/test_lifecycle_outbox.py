"""Lifecycle events: written with the transitions they describe, published from the outbox.

The webhook receiver is a real HTTP server on loopback; the database is the real one (both
passes).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings

from engine.language.model import Lifecycle
from engine.lifecycle import destination_key
from taskapp import models
from taskapp.lifecycle import Backoff, publish_round
from taskapp.services import run_advance, run_start, runs_purge
from taskapp.services.lifecycle import lifecycle_claim

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

STEPS = """
name: steps
version: 1
start_state: a
lifecycle: {connection: hook}
states:
  a:
    transitions: [{to: b, wait: 1s}]
  b:
    transitions: [{to: done, wait: 1s}]
  done: {final: succeeded}
"""


class Receiver:
    """A webhook receiver on loopback that can be told to fail."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.content_types: list[str] = []
        self.status = 200
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                if receiver.status == 200:
                    receiver.events.append(json.loads(body))
                    receiver.content_types.append(self.headers["Content-Type"])
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=s3cr3t"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch):
    found = Receiver()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_HOOK", found.url)
    yield found
    found.close()


def _finish(run_id, clock):
    run_advance(run_id=run_id)
    for _ in range(2):
        clock.advance(1)
        run_advance(run_id=run_id)


def _outbox(run_id):
    return [row.event for row in models.LifecycleEvent.objects.filter(run_id=run_id)]


def test_each_committed_transition_has_exactly_one_event_with_a_stable_id(
        receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    transitions = list(models.Transition.objects.filter(run=run).order_by("seq"))
    events = _outbox(run.pk)
    assert [e["id"] for e in events] == [f"{run.pk}.{t.seq}" for t in transitions]
    assert [e["type"] for e in events] == [
        "async_states.run.started", "async_states.run.transition", "async_states.run.finished"]
    assert [(e["data"]["from_state"], e["data"]["to_state"], e["data"]["trigger"])
            for e in events] == [(None, "a", "start"), ("a", "b", "condition"),
                                 ("b", "done", "condition")]
    last = events[-1]
    assert last["data"]["status"] == last["data"]["outcome"] == "succeeded"
    assert {e["specversion"] for e in events} == {"1.0"}
    assert {e["subject"] for e in events} == {str(run.pk)}
    assert {e["source"] for e in events} == {"/async_states/tasks/steps"}
    assert events[1]["time"] == transitions[1].at.isoformat().replace("+00:00", "Z")


def test_a_rolled_back_commit_leaves_neither_transitions_nor_events(
        receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    with pytest.raises(RuntimeError), transaction.atomic():
        run_advance(run_id=run.pk)
        assert models.Transition.objects.filter(run=run).count() == 1
        assert len(_outbox(run.pk)) == 1
        raise RuntimeError("the database went away before the commit")
    assert not models.Transition.objects.filter(run=run).exists()
    assert _outbox(run.pk) == []


def test_tasks_without_lifecycle_write_no_events(load_task, clock):
    load_task(STEPS.replace("lifecycle: {connection: hook}\n", ""))
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    assert not models.LifecycleEvent.objects.exists()


def test_the_deployment_setting_publishes_every_task(receiver, load_task, clock):
    load_task(STEPS.replace("lifecycle: {connection: hook}\n", ""))
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none",
                                         "LIFECYCLE": "{connection: hook}"}):
        run, _ = run_start(task="steps")
        _finish(run.pk, clock)
    assert len(_outbox(run.pk)) == 3


def test_published_events_are_posted_as_cloudevents_and_removed(receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    expected = _outbox(run.pk)
    assert publish_round(Backoff()) == 3
    assert receiver.events == expected
    assert set(receiver.content_types) == {"application/cloudevents+json"}
    assert not models.LifecycleEvent.objects.exists()


def test_a_down_receiver_keeps_the_events_in_order_until_it_is_back(
        receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    expected = [e["id"] for e in _outbox(run.pk)]
    receiver.status = 503
    backoff = Backoff()
    assert publish_round(backoff) == 3
    rows = list(models.LifecycleEvent.objects.order_by("id"))
    assert [r.attempts for r in rows] == [1, 0, 0]
    assert rows[0].last_error == "webhook connection 'hook': the receiver answered 503"
    assert "s3cr3t" not in rows[0].last_error
    assert all(r.available_at > clock.now() for r in rows)
    assert publish_round(backoff) == 0  # backing off: not even claimed
    receiver.status = 200
    clock.advance(2)
    backoff.succeeded(destination_key(Lifecycle(connection="hook")))  # its delay is over
    assert publish_round(backoff) == 3
    assert [e["id"] for e in receiver.events] == expected
    assert not models.LifecycleEvent.objects.exists()


def test_a_slow_receiver_gets_what_half_the_lease_allows_and_the_rest_waits_untried(
        receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    receiver.delay = 0.15
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none",
                                         "LIFECYCLE_LEASE_SECONDS": 0.4}):
        assert publish_round(Backoff()) == 3
        left = list(models.LifecycleEvent.objects.order_by("id"))
        assert 1 <= len(receiver.events) < 3 and len(left) == 3 - len(receiver.events)
        assert all(r.attempts == 0 and r.last_error == "" and r.available_at <= clock.now()
                   for r in left)
        for _ in range(5):  # each round publishes at least its first event
            publish_round(Backoff())
    assert not models.LifecycleEvent.objects.exists()
    assert [e["data"]["seq"] for e in receiver.events] == [1, 2, 3]


def test_a_claim_that_expires_is_published_again_with_the_same_ids(
        receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    first = lifecycle_claim(limit=10, lease=timedelta(seconds=60))  # then the cluster dies
    assert lifecycle_claim(limit=10, lease=timedelta(seconds=60)) == []
    clock.advance(61)
    again = lifecycle_claim(limit=10, lease=timedelta(seconds=60))
    assert [c.event["id"] for c in again] == [c.event["id"] for c in first]
    assert len(first) == 3


def test_retention_removes_the_events_of_purged_runs(receiver, load_task, clock):
    load_task(STEPS)
    run, _ = run_start(task="steps")
    _finish(run.pk, clock)
    runs_purge(now=clock.now() + timedelta(days=365))
    assert not models.Run.objects.exists()
    assert not models.LifecycleEvent.objects.exists()


def test_two_publishers_claim_disjoint_batches(receiver, load_task, clock):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; SKIP LOCKED is shown on PostgreSQL")
    load_task(STEPS)
    for _ in range(10):
        run, _ = run_start(task="steps")
        _finish(run.pk, clock)
    barrier, claims = threading.Barrier(2), []

    def claim():
        barrier.wait()
        claims.append([c.id for c in lifecycle_claim(limit=20, lease=timedelta(seconds=60))])
        connection.close()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = claims
    assert not set(first) & set(second)
    assert len(first) + len(second) == 30
