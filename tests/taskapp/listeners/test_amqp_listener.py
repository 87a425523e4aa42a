"""A listener on RabbitMQ (127.0.0.1:5672): a queue, an exchange and binding, acknowledgement
after the event is stored, a redelivered message dropped by its id, a poison message
acknowledged, a reconnect after the connection broke, and no password in its state."""

from __future__ import annotations

import json

import pika
import pytest

from engine.language.model import SourceSpec
from engine.sources import EventMapping
from tests.engine.brokers import AMQP_URL, require_rabbitmq, unique, use_connection
from tests.proxy import Proxy
from tests.taskapp.listeners.conftest import events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rabbit(monkeypatch):
    require_rabbitmq()
    use_connection(monkeypatch, "shop", AMQP_URL)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    declared: list[str] = []
    yield channel, declared
    for queue in declared:
        channel.queue_delete(queue)
    connection.close()


def _publish(channel, routing_key: str, body: dict, message_id: str | None = None,
             exchange: str = "") -> None:
    channel.basic_publish(exchange, routing_key, json.dumps(body).encode(),
                          pika.BasicProperties(message_id=message_id,
                                               headers={"origin": "shop"}))


def _queue_depth(channel, queue: str) -> int:
    return channel.queue_declare(queue, durable=True, passive=True).method.message_count


def test_a_queue_message_becomes_an_event_once_acknowledged(rabbit, listen):
    channel, declared = rabbit
    queue = unique("q")
    declared.append(queue)
    source = SourceSpec(broker="amqp", connection="shop", queue=queue)
    listener = listen(source, EventMapping(
        event="order.paid", correlation="{{ message.body.order }}",
        id="{{ message.body.payment }}"))
    _publish(channel, queue, {"order": "A-1", "payment": "p-1", "amount": 12})
    [event] = wait_until(lambda: events("order.paid"), what="the event")
    assert (event.key, event.correlation, event.payload) == (
        "order.paid:p-1", "A-1", {"order": "A-1", "payment": "p-1", "amount": 12})
    assert event.woken_at is not None
    wait_until(lambda: _queue_depth(channel, queue) == 0, what="the acknowledgement")
    state = listener.state()
    assert (state["connected"], state["messages"], state["events"]) == (True, 1, 1)


def test_a_redelivered_message_is_dropped_by_its_id(rabbit, listen):
    channel, declared = rabbit
    queue = unique("q")
    declared.append(queue)
    listener = listen(SourceSpec(broker="amqp", connection="shop", queue=queue),
                      EventMapping(event="order.shipped"))
    for _ in range(2):  # the message's own message_id is the default id
        _publish(channel, queue, {"order": "B-2"}, message_id="m-42")
    wait_until(lambda: listener.state()["duplicates"] == 1, what="the repeat handled")
    [event] = events("order.shipped")
    assert event.key == "order.shipped:m-42"
    assert listener.state()["duplicates"] == 1


def test_an_exchange_and_binding_declare_a_durable_queue(rabbit, listen):
    channel, declared = rabbit
    exchange = unique("x")
    source = SourceSpec(broker="amqp", connection="shop", exchange=exchange,
                        binding="order.*")
    declared.append(f"async_states.{exchange}.order.*")
    listen(source, EventMapping(event="{{ message.topic }}"))
    _publish(channel, "order.created", {"n": 1}, "c-1", exchange=exchange)
    _publish(channel, "invoice.created", {"n": 2}, "c-2", exchange=exchange)  # not bound
    [event] = wait_until(lambda: events("order.created"), what="the event")
    assert event.payload == {"n": 1}
    assert not events("invoice.created")
    channel.exchange_delete(exchange)


def test_a_poison_message_is_acknowledged_and_reported(rabbit, listen):
    channel, declared = rabbit
    queue = unique("q")
    declared.append(queue)
    listener = listen(SourceSpec(broker="amqp", connection="shop", queue=queue),
                      EventMapping(event="order.paid", correlation="{{ message.body.nope }}"),
                      max_bytes=100)
    _publish(channel, queue, {"pad": "x" * 200}, "big")
    _publish(channel, queue, {"order": 1}, "no-field")
    wait_until(lambda: listener.state()["errors"] == 2, what="two poison messages")
    wait_until(lambda: _queue_depth(channel, queue) == 0, what="their acknowledgement")
    state = listener.state()
    assert "nope" in state["last_error"] and state["connected"]
    assert not events("order.paid")


def test_the_listener_reconnects_after_its_connection_broke(rabbit, listen, monkeypatch):
    channel, declared = rabbit
    queue = unique("q")
    declared.append(queue)
    proxy = Proxy(5672)
    proxy.start()
    use_connection(monkeypatch, "shop", f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F")
    listener = listen(SourceSpec(broker="amqp", connection="shop", queue=queue),
                      EventMapping(event="order.paid"))
    try:
        proxy.stop()
        wait_until(lambda: not listener.state()["connected"], what="the disconnection")
        _publish(channel, queue, {"order": "kept"}, "while-away")  # queued meanwhile
        proxy.start()
        [event] = wait_until(lambda: events("order.paid"), timeout=30, what="the event")
        assert event.payload == {"order": "kept"}
        state = listener.state()
        assert state["connected"] and state["reconnects"] >= 1
    finally:
        proxy.stop()


def test_no_password_in_the_state_of_a_refused_listener(rabbit, listen, monkeypatch):
    use_connection(monkeypatch, "shop", "amqp://guest:S3cret-pw@127.0.0.1:5672/%2F")
    listener = listen(SourceSpec(broker="amqp", connection="shop", queue=unique("q")),
                      EventMapping(event="x"), wait=False)
    wait_until(lambda: listener.state()["errors"] >= 1, what="the refusal")
    state = listener.state()
    assert not state["connected"]
    assert "S3cret-pw" not in json.dumps(state)
    assert "shop" in state["source"]
