"""The message instruction on RabbitMQ (127.0.0.1:5672, guest/guest): confirms, ids, failures."""

from __future__ import annotations

import json
import logging

import pika
import pytest

from engine.errors import InstructionError
from engine.instructions.message import amqp
from engine.language.model import MessageSpec
from tests.engine.brokers import AMQP_URL, publish, require_rabbitmq, unique, use_connection
from tests.proxy import Proxy


@pytest.fixture
def channel():
    """A channel of the test's own connection (the subscriber side)."""
    require_rabbitmq()
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield connection.channel()
    connection.close()
    amqp._CLIENTS.close_all()


@pytest.fixture
def queue(channel):
    """A fresh auto-deleting queue: ``(name, channel)``."""
    name = unique("q")
    channel.queue_declare(name, auto_delete=True)
    yield name
    channel.queue_delete(name)


def get(channel, queue: str):
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None, f"nothing in {queue}"
    return properties, json.loads(body)


def test_publish_to_a_queue_is_confirmed_persistent_and_carries_the_key(
    monkeypatch, channel, queue, make_ctx
):
    use_connection(monkeypatch, "shop", AMQP_URL)
    spec = MessageSpec(
        broker="amqp", connection="shop", to=queue, body={"order": 7, "note": "é"},
        headers=(("x-source", "async-states"), ("x-n", 3)),
    )
    result = publish(spec, make_ctx(key="run-9:1:to_rabbit"))
    assert result == {"confirmed": True, "message_id": "run-9:1:to_rabbit"}
    properties, body = get(channel, queue)
    assert body == {"order": 7, "note": "é"}
    assert properties.message_id == "run-9:1:to_rabbit"
    assert properties.delivery_mode == 2
    assert properties.content_type == "application/json"
    assert properties.headers == {"x-source": "async-states", "x-n": "3"}


def test_publish_through_an_exchange_and_routing_key(monkeypatch, channel, queue, ctx):
    exchange = unique("x")
    channel.exchange_declare(exchange, "topic", auto_delete=True)
    channel.queue_bind(queue, exchange, "orders.*")
    use_connection(monkeypatch, "shop", AMQP_URL)
    spec = MessageSpec(
        broker="amqp", connection="shop", exchange=exchange, to="orders.created", body=[1]
    )
    publish(spec, ctx)
    assert get(channel, queue)[1] == [1]
    channel.exchange_delete(exchange)


def test_the_connection_is_reused_by_later_attempts(monkeypatch, channel, queue, ctx):
    use_connection(monkeypatch, "shop", AMQP_URL)
    spec = MessageSpec(broker="amqp", connection="shop", to=queue, body=1)
    publish(spec, ctx)
    first = amqp._CLIENTS.get(AMQP_URL, lambda: None)
    publish(spec, ctx)
    assert amqp._CLIENTS.get(AMQP_URL, lambda: None) is first
    assert len([get(channel, queue), get(channel, queue)]) == 2


def test_an_unroutable_message_fails_rather_than_vanishing(monkeypatch, channel, ctx):
    use_connection(monkeypatch, "shop", AMQP_URL)
    spec = MessageSpec(broker="amqp", connection="shop", to=unique("nobody"), body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, ctx)
    assert (info.value.error_class, info.value.retryable) == ("error", False)
    assert "unroutable: no queue is bound" in str(info.value)


def test_a_missing_exchange_is_a_final_error_and_the_next_attempt_works(
    monkeypatch, channel, queue, ctx
):
    use_connection(monkeypatch, "shop", AMQP_URL)
    missing = MessageSpec(broker="amqp", connection="shop", exchange=unique("no"), to="k")
    with pytest.raises(InstructionError) as info:
        publish(missing, ctx)
    assert info.value.error_class == "error" and "NOT_FOUND" in str(info.value)
    publish(MessageSpec(broker="amqp", connection="shop", to=queue, body=2), ctx)
    assert get(channel, queue)[1] == 2


def test_wrong_credentials_name_the_connection_and_never_the_password(
    monkeypatch, channel, ctx, caplog
):
    password = "Wr0ng-p4ss-word!"
    use_connection(monkeypatch, "orders", f"amqp://guest:{password}@127.0.0.1:5672/%2F")
    spec = MessageSpec(broker="amqp", connection="orders", to="q", body=1)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(InstructionError) as info:
            publish(spec, ctx)
    error = info.value
    assert (error.error_class, error.retryable) == ("error", False)
    assert str(error).startswith(
        "amqp connection 'orders' routing key 'q': the broker refused the credentials"
    )
    for text in (str(error), caplog.text, repr(error.__cause__)):
        assert password not in text and "Wr0ng" not in text


def test_a_closed_port_is_a_retryable_connection_error(monkeypatch, closed_port, make_ctx):
    use_connection(monkeypatch, "orders", f"amqp://guest:s3cret-pw@127.0.0.1:{closed_port}/")
    spec = MessageSpec(broker="amqp", connection="orders", to="q", body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, make_ctx(timeout=2))
    assert (info.value.error_class, info.value.retryable) == ("connection", True)
    assert "amqp connection 'orders'" in str(info.value)
    assert "s3cret-pw" not in str(info.value)


def test_broker_gone_then_back_reopens_the_connection(monkeypatch, channel, queue, make_ctx):
    proxy = Proxy(5672)
    proxy.start()
    use_connection(monkeypatch, "shop", f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    spec = MessageSpec(broker="amqp", connection="shop", to=queue, body="before")
    ctx = make_ctx(timeout=3)
    try:
        publish(spec, ctx)
        proxy.stop()
        with pytest.raises(InstructionError) as info:
            publish(spec, ctx)
        assert info.value.error_class == "connection"
        proxy.start()
        publish(MessageSpec(broker="amqp", connection="shop", to=queue, body="after"), ctx)
    finally:
        proxy.stop()
    assert [get(channel, queue)[1], get(channel, queue)[1]] == ["before", "after"]


def test_a_connection_dropped_while_idle_is_reopened_without_failing(
    monkeypatch, channel, queue, make_ctx
):
    proxy = Proxy(5672)
    proxy.start()
    use_connection(monkeypatch, "shop", f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    ctx = make_ctx(timeout=3)
    try:
        publish(MessageSpec(broker="amqp", connection="shop", to=queue, body=1), ctx)
        proxy.stop()
        proxy.start()
        assert publish(MessageSpec(broker="amqp", connection="shop", to=queue, body=2), ctx)
    finally:
        proxy.stop()
    assert [get(channel, queue)[1], get(channel, queue)[1]] == [1, 2]
