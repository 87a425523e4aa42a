"""The message instruction: Redis PUBLISH against 127.0.0.1:6379 (when up); other brokers."""

from __future__ import annotations

import json

import pytest
import redis

from engine.errors import InstructionError
from engine.instructions import message
from engine.language.model import MessageSpec
from tests.services import require_service

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def subscriber():
    """A pubsub subscribed to a fresh channel: ``(channel, pubsub)``."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    require_service("Redis at 127.0.0.1:6379", client.ping)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    channel = f"test-{id(pubsub)}"
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=2)  # the subscribe confirmation
    yield channel, pubsub
    pubsub.close()
    client.close()


def publish(spec: MessageSpec, ctx):
    return message.EXECUTOR.execute(spec, ctx)


def failure(spec: MessageSpec, ctx) -> InstructionError:
    with pytest.raises(InstructionError) as info:
        publish(spec, ctx)
    return info.value


def test_redis_publish_delivers_the_json_body(subscriber, ctx):
    channel, pubsub = subscriber
    body = {"order": 7, "items": ["a"], "note": "é"}
    spec = MessageSpec(broker="redis", url=REDIS_URL, to=channel, body=body)
    assert publish(spec, ctx) == {"receivers": 1}
    received = pubsub.get_message(timeout=5)
    assert received is not None and received["channel"].decode() == channel
    assert json.loads(received["data"]) == body


def test_redis_publish_renders_url_channel_and_body(subscriber, make_ctx):
    channel, pubsub = subscriber
    values = {"{{ secrets.REDIS }}": REDIS_URL, "{{ ch }}": channel, "{{ n }}": 3}
    ctx = make_ctx(render=lambda v: values.get(v, v) if isinstance(v, str) else v)
    spec = MessageSpec(broker="redis", url="{{ secrets.REDIS }}", to="{{ ch }}", body="{{ n }}")
    publish(spec, ctx)
    assert json.loads(pubsub.get_message(timeout=5)["data"]) == 3


def test_redis_unreachable_is_a_retryable_connection_error(closed_port, make_ctx):
    url = f"redis://:hunter2@127.0.0.1:{closed_port}/2"
    spec = MessageSpec(broker="redis", url=url, to="c", body=1)
    error = failure(spec, make_ctx(timeout=1))
    assert (error.error_class, error.retryable) == ("connection", True)
    assert f"127.0.0.1:{closed_port}/2 channel 'c'" in str(error)
    assert "hunter2" not in str(error)


def test_malformed_redis_url_is_an_error(ctx):
    error = failure(MessageSpec(broker="redis", url="http://x", to="c"), ctx)
    assert (error.error_class, error.retryable) == ("error", False)


@pytest.mark.parametrize("broker", ["amqp", "mqtt", "nats"])
def test_planned_brokers_are_not_supported_yet(broker, ctx):
    error = failure(MessageSpec(broker=broker, url="x://", to="q"), ctx)
    assert str(error).startswith(f"message broker '{broker}' is not supported yet: ")
    assert not error.retryable


def test_unknown_broker_is_an_error(ctx):
    assert "unknown message broker 'kafka'" in str(
        failure(MessageSpec(broker="kafka", url="x://", to="q"), ctx)
    )


def test_headers_on_redis_are_refused_rather_than_dropped(ctx):
    spec = MessageSpec(broker="redis", url=REDIS_URL, to="c", headers=(("x", "1"),))
    assert "no headers" in str(failure(spec, ctx))


def test_body_that_is_not_json_is_an_error(ctx):
    spec = MessageSpec(broker="redis", url=REDIS_URL, to="c", body={"x": object()})
    assert "does not encode as JSON" in str(failure(spec, ctx))
