"""A listener on NATS (127.0.0.1:4222): a core subject in a queue group, and a JetStream
durable consumer acknowledged after the event (``Nats-Msg-Id`` or the stream sequence as the
id), whose unacknowledged messages come back after a broken connection."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from engine.language.model import SourceSpec
from engine.sources import EventMapping
from tests.engine.brokers import NATS_URL, require_port, unique, use_connection
from tests.proxy import Proxy
from tests.taskapp.listeners.conftest import events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


async def _with_client(action):
    client = await nats.connect(NATS_URL)
    try:
        return await action(client)
    finally:
        await client.close()


def publish(subject: str, body: dict, message_id: str | None = None,
            jetstream: bool = False) -> None:
    headers = {"Nats-Msg-Id": message_id} if message_id else None

    async def send(client):
        if jetstream:
            await client.jetstream().publish(subject, json.dumps(body).encode(),
                                             headers=headers)
        else:
            await client.publish(subject, json.dumps(body).encode(), headers=headers)
            await client.flush()

    asyncio.run(_with_client(send))


@pytest.fixture
def bus(monkeypatch):
    require_port("NATS", 4222)
    use_connection(monkeypatch, "bus", NATS_URL)


@pytest.fixture
def stream(bus):
    name = unique("S").replace("-", "_")
    subject = f"{name}.orders"

    async def add(client):
        await client.jetstream().add_stream(name=name, subjects=[f"{name}.>"])

    asyncio.run(_with_client(add))
    yield name, subject

    async def delete(client):
        await client.jetstream().delete_stream(name)

    asyncio.run(_with_client(delete))


def test_a_subject_message_becomes_an_event(bus, listen):
    subject = unique("s").replace("-", "_")
    listen(SourceSpec(broker="nats", connection="bus", subject=subject),
           EventMapping(event="job.done", correlation="{{ message.body.job }}"))
    publish(subject, {"job": "j-1"}, "n-1")
    [event] = wait_until(lambda: events("job.done"), what="the event")
    assert (event.key, event.correlation) == ("job.done:n-1", "j-1")


def test_a_jetstream_message_is_acknowledged_after_its_event(stream, listen):
    name, subject = stream
    listener = listen(SourceSpec(broker="nats", connection="bus", subject=subject,
                                 stream=name, group="shop"), EventMapping(event="order.new"))
    publish(subject, {"order": 1}, jetstream=True)
    [event] = wait_until(lambda: events("order.new"), what="the event")
    assert event.key == f"order.new:{name}/1"

    async def pending(client):
        info = await client.jetstream().consumer_info(name, "shop")
        return info.num_ack_pending + info.num_pending

    wait_until(lambda: asyncio.run(_with_client(pending)) == 0, what="the ack")
    assert listener.state()["events"] == 1


def test_jetstream_keeps_what_was_published_while_the_connection_was_broken(
        stream, listen, monkeypatch):
    name, subject = stream
    proxy = Proxy(4222)
    proxy.start()
    use_connection(monkeypatch, "bus", f"nats://127.0.0.1:{proxy.port}")
    listener = listen(SourceSpec(broker="nats", connection="bus", subject=subject,
                                 stream=name), EventMapping(event="order.new"))
    try:
        proxy.stop()
        wait_until(lambda: not listener.state()["connected"], what="the disconnection")
        publish(subject, {"order": 2}, "o-2", jetstream=True)
        proxy.start()
        [event] = wait_until(lambda: events("order.new"), timeout=30, what="the event")
        assert event.key == "order.new:o-2"
    finally:
        proxy.stop()
