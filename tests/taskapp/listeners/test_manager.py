"""The cluster's listener thread (``taskapp.listeners``): one listener per distinct source of
the loaded definitions, started when a definition declaring it is loaded and stopped when no
definition declares it any more, with their state written to the cluster's heartbeat row."""

from __future__ import annotations

import json

import pytest
import redis
from django.utils import timezone

from taskapp import models
from taskapp.listeners import ListenerManager
from taskapp.services import cluster_heartbeat, definition_load
from tests.engine.brokers import REDIS_URL, require_port, unique, use_connection
from tests.taskapp.listeners.conftest import events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TASK = """
name: NAME
version: VERSION
start_state: a
states:
  a:
    transitions:
      - to: done
        subscribe:
          event: EVENT
          source: {broker: redis, connection: cache, channel: CHANNEL}
  done: {final: succeeded}
"""


def _load(name: str, version: int, event: str, channel: str) -> models.TaskDefinition:
    text = (TASK.replace("NAME", name).replace("VERSION", str(version))
            .replace("EVENT", event).replace("CHANNEL", channel))
    result = definition_load(text=text, source="t.yaml")
    assert result.status == "loaded", result.problems
    return result.definition


def test_listeners_follow_the_loaded_definitions(settings, monkeypatch):
    require_port("Redis", 6379)
    use_connection(monkeypatch, "cache", REDIS_URL)
    settings.ASYNC_STATES = {**settings.ASYNC_STATES, "LISTENER_POLL_SECONDS": 0.2}
    owner, channel = "host:1/c1", unique("ch")
    cluster_heartbeat(owner=owner, started_at=timezone.now())
    manager = ListenerManager(owner)
    manager.start()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        first = _load(unique("t"), 1, "door.opened", channel)
        second = _load(unique("t"), 1, "door.closed", channel)  # the same source: one listener

        def reported():
            return models.ClusterHeartbeat.objects.get(owner=owner).listeners

        wait_until(lambda: [s["connected"] for s in reported()] == [True], what="a listener")
        assert len(manager.listeners) == 1
        client.publish(channel, json.dumps({"door": 1}))
        wait_until(lambda: events("door.opened") and events("door.closed"),
                   what="an event for each subscription's mapping")
        first.delete()
        second.delete()
        wait_until(lambda: reported() == [], what="the listener stopping")
        assert manager.listeners == {}
    finally:
        manager.stop()
        manager.join(timeout=10)
        client.close()
    assert not manager.is_alive()
