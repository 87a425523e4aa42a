"""A listener on Redis (127.0.0.1:6379): a pub/sub channel, a stream read through a consumer
group (acknowledged after the event, pending entries taken again after a crash), two
listeners sharing a group taking each entry once, and a reconnect after CLIENT KILL."""

from __future__ import annotations

import json
import os
import socket

import pytest
import redis

from engine.language.model import SourceSpec
from engine.sources import EventMapping
from engine.sources import redis as redis_source
from tests.engine.brokers import REDIS_URL, require_port, unique, use_connection
from tests.taskapp.listeners.conftest import events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(monkeypatch):
    require_port("Redis", 6379)
    use_connection(monkeypatch, "cache", REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    streams: list[str] = []
    yield client, streams
    for stream in streams:
        client.delete(stream)
    client.close()


def test_a_channel_message_becomes_an_event(client, listen):
    redis_client, _ = client
    channel = unique("ch")
    listen(SourceSpec(broker="redis", connection="cache", channel=channel),
           EventMapping(event="{{ message.body.kind }}", correlation="{{ message.body.id }}",
                        id="{{ message.body.seq }}"))
    redis_client.publish(channel, json.dumps({"kind": "door.opened", "id": "d-7", "seq": 1}))
    [event] = wait_until(lambda: events("door.opened"), what="the event")
    assert (event.key, event.correlation) == ("door.opened:1", "d-7")


def test_a_stream_entry_is_acknowledged_after_its_event(client, listen):
    redis_client, streams = client
    stream = unique("st")
    streams.append(stream)
    listener = listen(SourceSpec(broker="redis", connection="cache", stream=stream,
                                 group="shop"), EventMapping(event="order.paid"))
    redis_client.xadd(stream, {"body": json.dumps({"order": 3}), "message_id": "k-3",
                               "origin": "till"})
    [event] = wait_until(lambda: events("order.paid"), what="the event")
    assert (event.key, event.payload) == ("order.paid:k-3", {"order": 3})
    wait_until(lambda: redis_client.xpending(stream, "shop")["pending"] == 0,
               what="the XACK")
    assert listener.state()["events"] == 1


def test_entries_left_pending_by_a_crash_are_taken_again(client, listen):
    redis_client, streams = client
    stream = unique("st")
    streams.append(stream)
    redis_client.xgroup_create(stream, "async_states", id="$", mkstream=True)
    redis_client.xadd(stream, {"body": json.dumps({"order": 9})})
    # A consumer of this process took it and died before acknowledging it.
    redis_client.xreadgroup("async_states", f"{socket.gethostname()}-{os.getpid()}",
                            {stream: ">"}, count=1)
    listen(SourceSpec(broker="redis", connection="cache", stream=stream),
           EventMapping(event="order.paid"))
    [event] = wait_until(lambda: events("order.paid"), what="the pending entry's event")
    assert event.key.startswith(f"order.paid:{stream}/")
    wait_until(lambda: redis_client.xpending(stream, "async_states")["pending"] == 0,
               what="the XACK")


def test_a_listener_reconnects_after_its_connection_was_killed(client, listen):
    redis_client, _ = client
    channel = unique("ch")
    listener = listen(SourceSpec(broker="redis", connection="cache", channel=channel),
                      EventMapping(event="ping"))
    # Only this process's listener connections (the server is shared).
    ours = [c for c in redis_client.client_list() if c["name"] == redis_source.client_name()]
    for entry in ours:
        redis_client.client_kill_filter(_id=entry["id"])
    assert ours
    wait_until(lambda: listener.state()["reconnects"] >= 1, what="the reconnect")
    wait_until(lambda: listener.state()["connected"], what="the new connection")
    redis_client.publish(channel, json.dumps({"n": 1}))
    wait_until(lambda: events("ping"), what="the event after the reconnect")
