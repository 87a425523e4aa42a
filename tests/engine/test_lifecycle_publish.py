"""Publishing one lifecycle event to the real local brokers, through the message publishers:
the event id is the message id and the content type says CloudEvents."""

from __future__ import annotations

import json

import pika
import pytest
import redis

from engine.errors import InstructionError
from engine.language.model import Lifecycle
from engine.lifecycle import CONTENT_TYPE, publish
from tests.engine.brokers import (
    AMQP_URL,
    REDIS_URL,
    require_port,
    require_rabbitmq,
    unique,
    use_connection,
)
from tests.engine.test_message_mqtt import Subscriber

EVENT = {"specversion": "1.0", "id": "run-1.3", "type": "async_states.run.transition",
         "source": "/async_states/tasks/t", "subject": "run-1", "data": {"seq": 3}}


def test_amqp_carries_the_id_and_the_cloudevents_content_type(monkeypatch):
    require_rabbitmq()
    use_connection(monkeypatch, "events", AMQP_URL)
    rabbit = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = rabbit.channel()
    queue = channel.queue_declare(unique("q"), exclusive=True).method.queue
    try:
        publish(Lifecycle("events", queue), EVENT, 5)
        _, properties, body = channel.basic_get(queue, auto_ack=True)
        assert json.loads(body) == EVENT
        assert properties.message_id == "run-1.3" and properties.content_type == CONTENT_TYPE
        assert properties.delivery_mode == 2
    finally:
        rabbit.close()


def test_mqtt_carries_the_id_and_the_content_type(monkeypatch):
    require_port("Mosquitto", 1883)
    use_connection(monkeypatch, "events", "mqtt://127.0.0.1:1883")
    topic = f"{unique('t')}/lifecycle"
    subscriber = Subscriber(topic)
    try:
        publish(Lifecycle("events", topic, qos=1), EVENT, 5)
        message = subscriber.get()
        assert json.loads(message.payload) == EVENT
        assert message.properties.ContentType == CONTENT_TYPE
        assert ("message_id", "run-1.3") in message.properties.UserProperty
    finally:
        subscriber.close()


def test_a_redis_stream_entry_carries_the_id_and_the_content_type(monkeypatch):
    require_port("Redis", 6379)
    use_connection(monkeypatch, "events", REDIS_URL)
    stream, store = unique("s"), redis.Redis.from_url(REDIS_URL)
    try:
        publish(Lifecycle("events", stream, stream=True), EVENT, 5)
        [(_, fields)] = store.xrange(stream)
        assert fields == {b"body": json.dumps(EVENT, separators=(",", ":")).encode(),
                          b"message_id": b"run-1.3", b"content-type": CONTENT_TYPE.encode()}
    finally:
        store.delete(stream)
        store.close()


def test_a_webhook_that_nobody_serves_fails_naming_the_connection_only(monkeypatch):
    use_connection(monkeypatch, "hook", "http://me:pa55word@127.0.0.1:9/x?token=t0k3n")
    with pytest.raises(InstructionError) as info:
        publish(Lifecycle("hook"), EVENT, 2)
    assert str(info.value) == ("webhook connection 'hook': cannot reach the receiver "
                               "(ConnectionError)")
    assert info.value.retryable
