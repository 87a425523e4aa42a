"""A listener on Mosquitto (127.0.0.1:1883): a shared QoS 1 subscription whose PUBACK waits
for the event, the MQTT 5 ``message_id`` user property as the event id, and a persistent
session that keeps the messages published while the connection was broken."""

from __future__ import annotations

import json

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from engine.language.model import SourceSpec
from engine.sources import EventMapping
from tests.engine.brokers import MQTT_URL, require_port, unique, use_connection
from tests.proxy import Proxy
from tests.taskapp.listeners.conftest import events, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def publisher(monkeypatch):
    require_port("Mosquitto", 1883)
    use_connection(monkeypatch, "devices", MQTT_URL)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()

    def publish(topic: str, body: dict, message_id: str | None = None) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        if message_id:
            properties.UserProperty = [("message_id", message_id)]
        client.publish(topic, json.dumps(body), qos=1, properties=properties).wait_for_publish(5)

    yield publish
    client.disconnect()
    client.loop_stop()


def test_a_topic_message_becomes_an_event_with_its_message_id(publisher, listen):
    topic = f"{unique('t')}/door"
    listener = listen(SourceSpec(broker="mqtt", connection="devices", topic=f"{topic}/+"),
                      EventMapping(event="door.changed", correlation="{{ message.topic }}"))
    publisher(f"{topic}/front", {"open": True}, "d-1")
    publisher(f"{topic}/front", {"open": True}, "d-1")  # published twice: one event
    wait_until(lambda: listener.state()["duplicates"] == 1, what="the repeat handled")
    [event] = events("door.changed")
    assert (event.key, event.correlation, event.payload) == (
        "door.changed:d-1", f"{topic}/front", {"open": True})
    assert listener.state()["duplicates"] == 1


def test_the_session_keeps_what_was_published_while_the_connection_was_broken(
        publisher, listen, monkeypatch):
    topic = f"{unique('t')}/meter"
    proxy = Proxy(1883)
    proxy.start()
    use_connection(monkeypatch, "devices", f"mqtt://127.0.0.1:{proxy.port}")
    listener = listen(SourceSpec(broker="mqtt", connection="devices", topic=topic),
                      EventMapping(event="meter.read"))
    try:
        proxy.stop()
        wait_until(lambda: not listener.state()["connected"], what="the disconnection")
        publisher(topic, {"kwh": 5}, "r-1")  # the broker keeps it for the session
        proxy.start()
        [event] = wait_until(lambda: events("meter.read"), timeout=30, what="the event")
        assert event.payload == {"kwh": 5}
        assert listener.state()["reconnects"] >= 1
    finally:
        proxy.stop()
