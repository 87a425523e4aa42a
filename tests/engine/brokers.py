"""Fixtures' helpers for the message instruction and broker source tests: the local brokers,
their probes, and publishing to them as another system would."""

from __future__ import annotations

import json
import time
import uuid

import nats
import paho.mqtt.client as paho
import pika
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from engine.errors import InstructionError
from engine.instructions import message
from engine.language.model import MessageSpec
from tests.services import require_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
MQTT_URL = "mqtt://127.0.0.1:1883"
NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"


def unique(prefix: str) -> str:
    """A name no other test run uses (queues, topics, subjects, streams)."""
    return f"reach-test-{prefix}-{uuid.uuid4().hex[:12]}"


def use_connection(monkeypatch, name: str, url: str) -> None:
    monkeypatch.setenv(f"ASYNC_STATES_CONNECTION_{name.upper()}", url)


def publish(spec: MessageSpec, ctx):
    return message.EXECUTOR.execute(spec, ctx)


def publish_once_back(spec: MessageSpec, ctx, within: float = 20.0) -> None:
    """Publish as the instruction's retry policy would while the client reconnects to a
    broker that came back (its reconnect wait is longer on a loaded machine): each failure
    must be retryable, and the publish must succeed within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            publish(spec, ctx)
            return
        except InstructionError as exc:
            assert exc.retryable, exc
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def require_rabbitmq() -> None:
    def probe() -> None:
        params = pika.URLParameters(AMQP_URL)
        params.connection_attempts = 1
        params.socket_timeout = 2
        pika.BlockingConnection(params).close()

    require_service("RabbitMQ at 127.0.0.1:5672", probe)


def require_port(name: str, port: int) -> None:
    import socket

    def probe() -> None:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    require_service(f"{name} at 127.0.0.1:{port}", probe)


def amqp_publish(queue: str, body: dict, message_id: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        connection.channel().basic_publish(
            "", queue, json.dumps(body).encode(), pika.BasicProperties(message_id=message_id))
    finally:
        connection.close()


def mqtt_publish(topic: str, body: dict) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


async def nats_js(action):
    client = await nats.connect(NATS_URL)
    try:
        return await action(client.jetstream())
    finally:
        await client.close()


def delete_queue(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


async def nats_publish(subject: str, payload: bytes, jetstream: bool) -> None:
    client = await nats.connect(NATS_URL)
    try:
        if jetstream:
            await client.jetstream().publish(subject, payload)
        else:
            await client.publish(subject, payload)
            await client.flush()
    finally:
        await client.close()
