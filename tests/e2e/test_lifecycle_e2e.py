"""Lifecycle events in the real cluster: to NATS JetStream (the deployment's setting) and to a
webhook on loopback (the task's key), with a receiver that is down for a while and a cluster
SIGKILLed while it publishes. Every committed transition reaches its receiver, with the id it
was given at commit, and runs never wait for a receiver."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from taskapp import models
from taskapp.services import event_send, run_start
from tests.e2e.conftest import ROOT, Cluster, wait_for
from tests.engine.brokers import NATS_URL, REDIS_URL, nats_js, require_port, unique

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TASK = """
name: {name}
version: 1
start_state: a
lifecycle: {{connection: hook}}
states:
  a:
    transitions: [{{to: b}}]
  b:
    transitions: [{{to: done}}]
  done: {{final: succeeded}}
"""


class Receiver:
    """A webhook receiver on a fixed loopback port: ``down()`` closes it (connections are
    refused), ``up()`` listens again; ``delay`` slows every answer."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/events?token=e2e-t0ken"
        self.events: list[dict] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.delay)
                assert self.headers["Content-Type"] == "application/cloudevents+json"
                with receiver._lock:
                    receiver.events.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [e["id"] for e in self.events]


@pytest.fixture
def receiver(monkeypatch):
    found = Receiver()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_HOOK", found.url)
    # A claim of a killed cluster is taken again after this long.
    monkeypatch.setenv("ASYNC_STATES_LIFECYCLE_LEASE_SECONDS", "3")
    monkeypatch.setenv("ASYNC_STATES_LIFECYCLE_MAX_BACKOFF_SECONDS", "2")
    yield found
    found.down()


def _expected_ids(runs) -> list[str]:
    return [f"{run_id}.{seq}" for run_id, seq in models.Transition.objects.filter(
        run_id__in=[r.pk for r in runs]).order_by("run_id", "seq").values_list("run_id", "seq")]


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def _start(load, count: int) -> list[models.Run]:
    name = load(TASK.format(name=unique("told").replace("-", "_")))
    return [run_start(task=name)[0] for _ in range(count)]


@pytest.fixture
def subject(monkeypatch):
    """A JetStream stream for the deployment's lifecycle setting (set before the cluster
    starts); deleted afterwards."""
    require_port("NATS", 4222)
    name = unique("lifecycle").replace("-", "_")
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_BUS", NATS_URL)
    monkeypatch.setenv("ASYNC_STATES_LIFECYCLE",
                       f"{{connection: bus, to: {name}, jetstream: true}}")
    asyncio.run(nats_js(lambda js: js.add_stream(name=name.upper(), subjects=[name])))
    yield name
    asyncio.run(nats_js(lambda js: js.delete_stream(name.upper())))


async def _stored(stream: str) -> list[tuple[str, dict]]:
    async def read(js):
        info = await js.stream_info(stream)
        messages = [await js.get_msg(stream, seq) for seq in range(1, info.state.last_seq + 1)]
        assert {m.headers["content-type"] for m in messages} == {
            "application/cloudevents+json"}
        return [(m.headers["Nats-Msg-Id"], json.loads(m.data)) for m in messages]

    return await nats_js(read)


def test_events_reach_jetstream_and_the_webhook_exactly_as_committed(
        receiver, subject, cluster, load):
    runs = _start(load, 5)
    for run in runs:
        assert wait_for(run.pk, timeout=60).status == "succeeded"
    expected = _expected_ids(runs)
    assert len(expected) == 15
    _until(lambda: not models.LifecycleEvent.objects.exists(), 60, "the outbox emptied")
    assert sorted(receiver.ids()) == sorted(expected)
    stored = asyncio.run(_stored(subject.upper()))
    assert sorted(msg_id for msg_id, _ in stored) == sorted(expected)
    assert all(event["id"] == msg_id for msg_id, event in stored)
    by_id = {e["id"]: e for e in receiver.events}
    assert all(by_id[msg_id] == event for msg_id, event in stored)
    finished = [e for e in receiver.events if e["type"] == "async_states.run.finished"]
    assert len(finished) == 5 and {e["data"]["outcome"] for e in finished} == {"succeeded"}


def test_a_receiver_down_for_a_while_loses_nothing_and_no_run_waits_for_it(
        receiver, cluster, load):
    receiver.down()
    runs = _start(load, 10)
    for run in runs:  # every run finishes while nobody receives
        assert wait_for(run.pk, timeout=60).status == "succeeded"
    expected = _expected_ids(runs)
    _until(lambda: models.LifecycleEvent.objects.filter(attempts__gt=0).exists(), 30,
           "a publish failed")
    assert models.LifecycleEvent.objects.count() == len(expected) == 30
    receiver.up()
    _until(lambda: not models.LifecycleEvent.objects.exists(), 60, "the outbox emptied")
    assert sorted(set(receiver.ids())) == sorted(expected)
    # One destination is published in commit order: each run's events arrive in seq order.
    for run in runs:
        seqs = [e["data"]["seq"] for e in receiver.events if e["subject"] == str(run.pk)]
        assert seqs == sorted(seqs)


def test_a_cluster_killed_mid_publish_publishes_again_with_the_same_ids(
        receiver, cluster, load):
    receiver.delay = 0.1  # 30 events take the publisher about 3 s
    runs = _start(load, 10)
    for run in runs:
        assert wait_for(run.pk, timeout=60).status == "succeeded"
    expected = _expected_ids(runs)
    _until(lambda: len(receiver.ids()) >= 5, 30, "publishing began")
    cluster.kill()
    assert models.LifecycleEvent.objects.exists(), "the kill came too late to test anything"
    cluster.start()
    _until(lambda: not models.LifecycleEvent.objects.exists(), 60, "the outbox emptied")
    received = receiver.ids()
    assert sorted(set(received)) == sorted(expected)  # nothing missing, nothing invented
    repeated = {i for i in received if received.count(i) > 1}
    for event_id in repeated:  # a repeat is the same event
        copies = [e for e in receiver.events if e["id"] == event_id]
        assert all(copy == copies[0] for copy in copies)


@pytest.fixture
def events_stream(monkeypatch):
    require_port("Redis", 6379)
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", REDIS_URL)
    name = unique("parcels")
    store = redis.Redis.from_url(REDIS_URL)
    yield name, store
    store.delete(name)
    store.close()


def test_the_shipped_parcel_delivery_task_publishes_its_lifecycle(events_stream, cluster, load):
    stream, store = events_stream
    text = (ROOT / "taskdefs" / "parcel_delivery.yaml").read_text()
    load(text.replace("to: parcels.lifecycle", f"to: {stream}"))
    parcel = unique("P")
    run, _ = run_start(task="parcel_delivery", input={"parcel_id": parcel})
    wait_for(run.pk, state="out_for_delivery", timeout=30)
    event_send(name="parcel.delivered", correlation=parcel)
    assert wait_for(run.pk, timeout=30).status == "succeeded"
    _until(lambda: store.xlen(stream) == 3, 30, "three events on the stream")
    entries = [fields for _, fields in store.xrange(stream)]
    assert [fields[b"message_id"].decode() for fields in entries] == _expected_ids([run])
    events = [json.loads(fields[b"body"]) for fields in entries]
    assert [(e["type"], e["data"]["to_state"]) for e in events] == [
        ("async_states.run.started", "packed"),
        ("async_states.run.transition", "out_for_delivery"),
        ("async_states.run.finished", "delivered")]
    assert events[-1]["data"]["outcome"] == "succeeded"


def test_two_clusters_share_the_outbox_without_publishing_an_event_twice(
        receiver, cluster, load):
    receiver.delay = 0.01
    second = Cluster(cluster.env)
    second.start()
    try:
        runs = _start(load, 20)
        for run in runs:
            assert wait_for(run.pk, timeout=60).status == "succeeded"
        _until(lambda: not models.LifecycleEvent.objects.exists(), 60, "the outbox emptied")
    finally:
        second.stop()
    received = receiver.ids()
    assert sorted(received) == sorted(_expected_ids(runs))  # each once: claims are disjoint
