"""The message instruction on Redis (127.0.0.1:6379): PUBLISH, stream XADD, URL or connection."""

from __future__ import annotations

import json

import pytest
import redis

from engine.errors import InstructionError
from engine.instructions import message
from engine.language.model import MessageSpec
from tests.engine.brokers import unique
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


def test_stream_entry_carries_body_key_and_headers(monkeypatch, make_ctx):
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    require_service("Redis at 127.0.0.1:6379", client.ping)
    stream = unique("stream")
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", REDIS_URL)
    spec = MessageSpec(
        broker="redis", connection="events", to=stream, stream=True, body={"n": 1},
        headers=(("source", "async-states"),),
    )
    try:
        result = publish(spec, make_ctx(key="run-3:1:emit"))
        [(entry_id, fields)] = client.xrange(stream)
    finally:
        client.delete(stream)
        client.close()
    assert result == {"id": entry_id.decode(), "message_id": "run-3:1:emit"}
    assert fields == {b"body": b'{"n": 1}', b"message_id": b"run-3:1:emit",
                      b"source": b"async-states"}


def test_a_header_may_not_overwrite_a_stream_field(ctx):
    spec = MessageSpec(broker="redis", url=REDIS_URL, to="s", stream=True,
                       headers=(("message_id", "mine"),))
    assert "would overwrite a field" in str(failure(spec, ctx))


def test_redis_connection_refusing_the_password_names_the_connection(monkeypatch, ctx):
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    require_service("Redis at 127.0.0.1:6379", client.ping)
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_CACHE", "redis://nobody:n0t-the-pass@127.0.0.1:6379/0")
    error = failure(MessageSpec(broker="redis", connection="cache", to="c", body=1), ctx)
    assert str(error).startswith("redis connection 'cache' channel 'c': ")
    assert "n0t-the-pass" not in str(error) and "n0t-the-pass" not in repr(error.__cause__)
    assert not error.retryable
