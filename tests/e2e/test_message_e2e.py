"""The message instruction in the real cluster: docs' ``announce`` example publishing to
RabbitMQ, Mosquitto, NATS JetStream and Redis through named connections, the shipped
``order_events`` task, and refused credentials failing a run with no password stored."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pika
import pytest
import redis

from taskapp import models
from taskapp.services import run_start
from tests.e2e.conftest import wait_for
from tests.engine.brokers import (
    AMQP_URL,
    MQTT_URL,
    NATS_URL,
    REDIS_URL,
    nats_js,
    require_port,
    require_rabbitmq,
    unique,
)
from tests.engine.test_docs_examples import yaml_examples
from tests.engine.test_message_mqtt import Subscriber as MqttSubscriber

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
WRONG_PASSWORD = "e2e-Wr0ng-rabbit-pw"


@pytest.fixture
def brokers(monkeypatch):
    """The four local brokers up, and configured as the docs' connections (before the cluster
    starts, which inherits this environment)."""
    require_rabbitmq()
    require_port("Mosquitto", 1883)
    require_port("NATS", 4222)
    require_port("Redis", 6379)
    for name, url in {
        "SHOP": AMQP_URL, "DEVICES": MQTT_URL, "BUS": NATS_URL, "CACHE": REDIS_URL,
        "EVENTS": REDIS_URL, "DISPLAYS": MQTT_URL,
        "LOCKED": f"amqp://guest:{WRONG_PASSWORD}@127.0.0.1:5672/%2F",
    }.items():
        monkeypatch.setenv(f"ASYNC_STATES_CONNECTION_{name}", url)


@pytest.fixture
def broker_cluster(brokers, cluster):
    return cluster


def announce_example() -> str:
    [text] = [body for _, body in yaml_examples() if body.startswith("name: announce\n")]
    return text


def test_the_docs_announce_example_publishes_to_every_broker(broker_cluster, load):
    exchange, subject, stream, order = unique("x"), unique("s").replace("-", "_"), unique(
        "orders"), unique("order")
    text = (announce_example().replace("exchange: shop", f"exchange: {exchange}")
            .replace("connection: bus, to: orders.created", f"connection: bus, to: {subject}")
            .replace("to: orders, stream", f"to: {stream}, stream"))
    rabbit = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = rabbit.channel()
    channel.exchange_declare(exchange, "topic", auto_delete=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, "orders.*")
    asyncio.run(nats_js(lambda js: js.add_stream(name=subject.upper(), subjects=[subject])))
    devices = MqttSubscriber(f"shop/orders/{order}")
    store = redis.Redis.from_url(REDIS_URL)
    try:
        load(text)
        run, _ = run_start(task="announce", input={"order_id": order})
        run = wait_for(run.pk, timeout=60)
        assert run.status == "succeeded", run.error
        key = f"{run.pk}:1:"
        _, properties, body = channel.basic_get(queue, auto_ack=True)
        assert json.loads(body) == {"order": order}
        assert properties.message_id == f"{key}to_rabbit" and properties.delivery_mode == 2
        message = devices.get()
        assert message.qos == 2
        assert ("message_id", f"{key}to_devices") in message.properties.UserProperty
        assert run.data["receipt"] == {"stream": subject.upper(), "seq": 1, "duplicate": False,
                                       "message_id": f"{key}to_bus"}
        [(_, fields)] = store.xrange(stream)
        assert fields[b"message_id"] == f"{key}to_stream".encode()
        assert json.loads(fields[b"body"]) == {"order_id": order}
    finally:
        devices.close()
        store.delete(stream)
        store.close()
        asyncio.run(nats_js(lambda js: js.delete_stream(subject.upper())))
        channel.exchange_delete(exchange)
        rabbit.close()


def test_the_shipped_order_events_task_runs(broker_cluster, load):
    text = (ROOT / "taskdefs" / "order_events.yaml").read_text()
    stream = unique("placed")
    order = unique("A")
    store = redis.Redis.from_url(REDIS_URL)
    try:
        load(text.replace("to: orders.placed", f"to: {stream}"))
        run, _ = run_start(task="order_events", input={"order_id": order, "total": 42.5})
        run = wait_for(run.pk, timeout=60)
        assert (run.status, run.state) == ("succeeded", "done"), run.error
        [(entry_id, fields)] = store.xrange(stream)
        assert run.data["stream_entry"]["id"] == entry_id.decode()
        assert json.loads(fields[b"body"]) == {"order_id": order, "total": 42.5}
    finally:
        store.delete(stream)
        store.close()


LOCKED = """
name: locked_out
version: 1
start_state: publish
states:
  publish:
    instructions:
      - message: {broker: amqp, connection: locked, to: anything, body: 1}
        retry: 3
    transitions: [{to: done}]
  done: {final: succeeded}
"""


def test_refused_credentials_fail_the_run_once_naming_the_connection_and_no_password(
    broker_cluster, load
):
    load(LOCKED)
    run, _ = run_start(task="locked_out")
    run = wait_for(run.pk, timeout=60)
    assert run.status == "failed"
    attempts = list(models.InstructionAttempt.objects.filter(run=run))
    assert [(a.ok, a.error_class) for a in attempts] == [(False, "error")]  # final: no retry
    assert re.search(
        r"amqp connection 'locked' routing key 'anything': the broker refused the credentials",
        attempts[0].error,
    )
    stored = json.dumps([
        list(models.Run.objects.filter(pk=run.pk).values()),
        list(models.Transition.objects.filter(run=run).values()),
        list(models.InstructionAttempt.objects.filter(run=run).values()),
    ], default=str)
    assert WRONG_PASSWORD not in stored and "Wr0ng" not in stored
    assert any("locked" in line for line in broker_cluster.output)  # the log tells of it...
    assert not any(WRONG_PASSWORD in line for line in broker_cluster.output)  # ...safely


UNREACHABLE = """
name: unreachable
version: 1
start_state: publish
states:
  publish:
    instructions:
      - message: {broker: nats, connection: gone, to: anything, body: 1}
        retry: {max_attempts: 3, initial_delay: 100ms}
        on_error: gave_up
    transitions: [{to: done}]
  gave_up: {final: failed}
  done: {final: succeeded}
"""


def test_an_unreachable_broker_is_retried_then_goes_to_on_error(
    broker_cluster_unreachable, load
):
    load(UNREACHABLE)
    run, _ = run_start(task="unreachable")
    run = wait_for(run.pk, timeout=60)
    assert (run.status, run.state) == ("failed", "gave_up")
    attempts = models.InstructionAttempt.objects.filter(run=run).order_by("attempt")
    assert [(a.attempt, a.error_class) for a in attempts] == [
        (1, "connection"), (2, "connection"), (3, "connection")
    ]
    assert all("nats connection 'gone'" in a.error for a in attempts)


@pytest.fixture
def broker_cluster_unreachable(gone_connection, brokers, cluster):
    return cluster


@pytest.fixture
def gone_connection(monkeypatch):
    """Connection ``gone``: a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_GONE", f"nats://127.0.0.1:{port}")
    return port
