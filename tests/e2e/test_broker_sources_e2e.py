"""Subscriptions fed by brokers, in the real cluster: the shipped ``parcel_tracking`` task
moved by messages the test publishes on RabbitMQ, Mosquitto, NATS JetStream and Redis; a
repeated message dropped by its id; two clusters sharing a source, each message taken once;
and a listener whose connection breaks mid-run reconnecting, with the health check saying so
meanwhile (naming the connection, never its password)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pika
import pytest
import redis
from django.test import Client

from taskapp import models
from taskapp.services import run_start
from tests.e2e.conftest import Cluster, listeners, wait_for, wait_listening
from tests.engine.brokers import (
    AMQP_URL,
    REDIS_URL,
    amqp_publish,
    delete_queue,
    mqtt_publish,
    nats_js,
    nats_publish,
    unique,
)
from tests.proxy import Proxy

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker_cluster(brokers, cluster):
    return cluster


def reported(part: str, check, timeout: float = 15.0) -> list[dict]:
    """The reported states of the listeners whose source names ``part``, once ``check``
    holds of them (the clusters report every LISTENER_POLL_SECONDS)."""
    deadline = time.monotonic() + timeout
    while True:
        states = [s for s in listeners() if part in s["source"]]
        if check(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def parcel_task(names: dict[str, str]) -> str:
    """The shipped task, its destinations renamed to this test's own."""
    text = (ROOT / "taskdefs" / "parcel_tracking.yaml").read_text()
    return (text.replace("queue: parcels", f"queue: {names['queue']}")
            .replace("topic: depots/+/scans", f"topic: {names['topic']}/+/scans")
            .replace("stream: PARCELS", f"stream: {names['stream']}")
            .replace("subject: parcels.delivered", f"subject: {names['stream']}.delivered")
            .replace("stream: signatures", f"stream: {names['signatures']}"))


def test_the_shipped_parcel_task_follows_messages_on_four_brokers(broker_cluster, load):
    names = {"queue": unique("parcels"), "topic": unique("depots"),
             "stream": unique("P").replace("-", "_").upper(), "signatures": unique("sig")}
    asyncio.run(nats_js(lambda js: js.add_stream(name=names["stream"],
                                               subjects=[f"{names['stream']}.>"])))
    store = redis.Redis.from_url(REDIS_URL)
    parcel = unique("P")
    try:
        load(parcel_task(names))
        run, _ = run_start(task="parcel_tracking", input={"parcel": parcel})
        wait_listening(4)
        for _ in range(2):  # a repeat (at-least-once publishing): dropped by its id
            amqp_publish(names["queue"], {"parcel": parcel, "carrier": "DHL"}, "ship-1")
        wait_for(run.pk, state="shipped")
        mqtt_publish(f"{names['topic']}/north/scans", {"parcel": parcel, "kind": "transit"})
        mqtt_publish(f"{names['topic']}/south/scans", {"parcel": parcel, "kind": "arrival"})
        wait_for(run.pk, state="arrived")
        asyncio.run(nats_js(lambda js: js.publish(
            f"{names['stream']}.delivered", b'{"at": "door"}', headers={"Parcel": parcel})))
        wait_for(run.pk, state="delivered")
        store.xadd(names["signatures"], {"body": json.dumps(
            {"parcel": parcel, "signature_id": "sig-9", "name": "A. Reader"})})
        run = wait_for(run.pk, timeout=30)
        assert (run.status, run.state) == ("succeeded", "done"), run.error
        assert run.data["shipping"] == {"parcel": parcel, "carrier": "DHL"}
        assert run.data["signature"]["name"] == "A. Reader"
        triggers = list(models.Transition.objects.filter(run=run, trigger="condition")
                        .values_list("condition_kind", flat=True))
        assert triggers == ["subscribe"] * 4
        assert models.Event.objects.filter(key="parcel.shipped:ship-1").count() == 1
        assert models.Event.objects.filter(key="parcel.signed:sig-9").count() == 1
        [shop] = reported(names["queue"], lambda states: states[0]["messages"] == 2)
        assert (shop["messages"], shop["events"], shop["duplicates"]) == (2, 1, 1)
    finally:
        store.delete(names["signatures"])
        store.close()
        asyncio.run(nats_js(lambda js: js.delete_stream(names["stream"])))
        delete_queue(names["queue"])


SHARED = """
name: shared_source
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: done
        subscribe:
          event: job.done
          correlate: "{{ input.job }}"
          source: {SOURCE}
  done: {final: succeeded}
"""

CORRELATE = "correlation: '{{ message.body.job }}'"
SHARED_SOURCES = {
    "amqp": f"{{broker: amqp, connection: shop, queue: NAME, {CORRELATE}}}",
    "mqtt": f"{{broker: mqtt, connection: devices, topic: NAME, {CORRELATE}}}",
    "redis-stream": f"{{broker: redis, connection: events, stream: NAME, {CORRELATE}}}",
    "nats-jetstream": f"{{broker: nats, connection: bus, stream: NAME, subject: NAME.jobs, "
                      f"{CORRELATE}}}",
    "nats": f"{{broker: nats, connection: bus, subject: NAME, {CORRELATE}}}",
    "redis-channel": f"{{broker: redis, connection: events, channel: NAME, {CORRELATE}}}",
}
# Where every cluster hears every message: each stores it, the event id drops the repeat.
EVERYONE_HEARS = {"redis-channel"}


class SharedSource:
    """Publishes the test's messages to one kind of source, and cleans up after."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = unique("jobs").replace("-", "_").upper()
        self.store = redis.Redis.from_url(REDIS_URL)
        if kind == "nats-jetstream":
            asyncio.run(nats_js(lambda js: js.add_stream(name=self.name,
                                                       subjects=[f"{self.name}.>"])))

    def publish(self, i: int) -> None:
        body = {"job": f"j{i}"}
        if self.kind == "amqp":
            amqp_publish(self.name, body, f"m{i}")
        elif self.kind == "mqtt":
            mqtt_publish(self.name, body)
        elif self.kind == "redis-stream":
            self.store.xadd(self.name, {"body": json.dumps(body)})
        elif self.kind == "redis-channel":
            self.store.publish(self.name, json.dumps(body))
        else:
            subject = f"{self.name}.jobs" if self.kind == "nats-jetstream" else self.name
            asyncio.run(nats_publish(subject, json.dumps(body).encode(),
                                      jetstream=self.kind == "nats-jetstream"))

    def close(self) -> None:
        if self.kind == "amqp":
            delete_queue(self.name)
        if self.kind == "nats-jetstream":
            asyncio.run(nats_js(lambda js: js.delete_stream(self.name)))
        self.store.delete(self.name)
        self.store.close()


@pytest.mark.parametrize("kind", list(SHARED_SOURCES))
def test_two_clusters_share_a_source_and_take_each_message_once(kind, broker_cluster, load):
    source = SharedSource(kind)
    load(SHARED.replace("{SOURCE}", SHARED_SOURCES[kind].replace("NAME", source.name)))
    second = Cluster(broker_cluster.env)
    second.start()
    try:
        runs = [run_start(task="shared_source", input={"job": f"j{i}"})[0] for i in range(20)]
        wait_listening(2)
        for i in range(20):
            source.publish(i)
        for run in runs:
            assert wait_for(run.pk, timeout=60).status == "succeeded"
        expected = 40 if kind in EVERYONE_HEARS else 20
        taken = reported(source.name, lambda states: len(states) == 2 and sum(
            s["messages"] for s in states) >= expected)
        assert len(taken) == 2
        assert models.Event.objects.filter(name="job.done").count() == 20
        messages = sum(s["messages"] for s in taken)
        duplicates = sum(s["duplicates"] for s in taken)
        if kind in EVERYONE_HEARS:
            assert (messages, duplicates) == (40, 20)
        else:
            assert (messages, duplicates) == (20, 0)
    finally:
        second.stop()
        source.close()


@pytest.fixture
def proxied(brokers, monkeypatch):
    """RabbitMQ behind a proxy the test can cut: the cluster's connection 'shop' uses it."""
    proxy = Proxy(5672)
    proxy.start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP",
                       f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_cluster(proxied, cluster):
    return cluster


BROKEN = """
name: broken_link
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: done
        subscribe:
          event: invoice.paid
          correlate: "{{ input.invoice }}"
          source: {broker: amqp, connection: shop, queue: NAME,
                   correlation: "{{ message.body.invoice }}"}
  done: {final: succeeded}
"""


def test_a_listener_reconnects_after_its_connection_broke_mid_run(proxied, proxied_cluster,
                                                                   load):
    queue = unique("invoices")
    load(BROKEN.replace("NAME", queue))
    run, _ = run_start(task="broken_link", input={"invoice": "I-7"})
    wait_listening(1)
    try:
        proxied.stop()  # the broker "goes away" for the cluster only
        reported(queue, lambda states: not states[0]["connected"], timeout=30)
        body = Client().get("/api/health/").json()
        check = body["checks"]["listeners"]
        assert not check["ok"] and "connection 'shop'" in check["detail"]
        assert "guest:guest" not in json.dumps(body)
        amqp_publish(queue, {"invoice": "I-7"}, "pay-7")  # the queue keeps it meanwhile
        proxied.start()
        run = wait_for(run.pk, timeout=60)
        assert run.status == "succeeded"
        [state] = reported(queue, lambda states: states[0]["reconnects"] >= 1
                           and states[0]["connected"])
        assert state["reconnects"] >= 1 and state["connected"]
    finally:
        delete_queue(queue)


def test_the_docs_track_shipment_example_runs(broker_cluster, load, monkeypatch):
    """The docs' example, its destinations renamed: a message on the exchange, bound by the
    key's pattern and identified by a header, moves the run; a repeat is dropped."""
    from tests.engine.test_docs_examples import yaml_examples

    [text] = [body for _, body in yaml_examples() if body.startswith("name: track_shipment\n")]
    exchange, stream, shipments = unique("warehouse"), unique("O").replace("-", "_").upper(), \
        unique("shipments")
    text = (text.replace("exchange: warehouse", f"exchange: {exchange}")
            .replace("stream: ORDERS", f"stream: {stream}")
            .replace("subject: orders.shipped", f"subject: {stream}.shipped")
            .replace("stream: shipments", f"stream: {shipments}")
            .replace('topic: "depots/+/scans"', f'topic: "{unique("depots")}/+/scans"'))
    asyncio.run(nats_js(lambda js: js.add_stream(name=stream, subjects=[f"{stream}.>"])))
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    try:
        load(text)
        run, _ = run_start(task="track_shipment", input={"order_id": "A-77"})
        wait_listening(4)
        for _ in range(2):
            channel.basic_publish(exchange, "orders.eu.shipped", json.dumps(
                {"order_id": "A-77", "carrier": "UPS"}).encode(),
                pika.BasicProperties(headers={"x-shipment-id": "s-1"}))
        run = wait_for(run.pk, timeout=30)
        assert (run.status, run.state) == ("succeeded", "shipped"), run.error
        assert run.data["shipment"] == {"order_id": "A-77", "carrier": "UPS"}
        [shop] = reported(exchange, lambda states: states[0]["messages"] == 2)
        assert (shop["messages"], shop["events"], shop["duplicates"]) == (2, 1, 1)
        assert models.Event.objects.filter(key="order.shipped:s-1").count() == 1
    finally:
        channel.queue_delete(f"async_states.{exchange}.orders.*.shipped")
        channel.exchange_delete(exchange)
        connection.close()
        asyncio.run(nats_js(lambda js: js.delete_stream(stream)))
        redis.Redis.from_url(REDIS_URL).delete(shipments)
