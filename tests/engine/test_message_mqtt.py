"""The message instruction on Mosquitto (127.0.0.1:1883) over MQTT 5: QoS, retain, the id."""

from __future__ import annotations

import json
import queue
import threading

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from engine.errors import InstructionError
from engine.instructions.message import mqtt
from engine.language.model import MessageSpec
from tests.engine.brokers import MQTT_URL, publish, require_port, unique, use_connection
from tests.proxy import Proxy


class Subscriber:
    """A test's own MQTT 5 client subscribed to one topic; ``get()`` the next message."""

    def __init__(self, topic: str) -> None:
        self.messages: queue.Queue = queue.Queue()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.on_connect = lambda client, *_args: client.subscribe(topic, qos=2)
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert subscribed.wait(10), "the subscription was not acknowledged"

    def get(self):
        return self.messages.get(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def topic():
    require_port("Mosquitto", 1883)
    name = f"{unique('t')}/orders"
    yield name
    mqtt._CLIENTS.close_all()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_delivers_with_qos_and_the_key_as_user_property(monkeypatch, topic, qos, make_ctx):
    use_connection(monkeypatch, "devices", MQTT_URL)
    subscriber = Subscriber(topic)
    spec = MessageSpec(
        broker="mqtt", connection="devices", to=topic, qos=qos, body={"on": True},
        headers=(("source", "async-states"),),
    )
    try:
        assert publish(spec, make_ctx(key="run-5:1:switch")) == {
            "qos": qos, "message_id": "run-5:1:switch"
        }
        message = subscriber.get()
    finally:
        subscriber.close()
    assert json.loads(message.payload) == {"on": True}
    assert message.qos == qos
    assert ("message_id", "run-5:1:switch") in message.properties.UserProperty
    assert ("source", "async-states") in message.properties.UserProperty
    assert message.properties.ContentType == "application/json"


def test_retain_keeps_the_message_for_a_later_subscriber(monkeypatch, topic, ctx):
    use_connection(monkeypatch, "devices", MQTT_URL)
    spec = MessageSpec(broker="mqtt", connection="devices", to=topic, retain=True, body=42)
    publish(spec, ctx)
    subscriber = Subscriber(topic)  # subscribes after the publish
    try:
        message = subscriber.get()
        assert (json.loads(message.payload), message.retain) == (42, True)
    finally:
        subscriber.close()
        clear = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        clear.connect("127.0.0.1", 1883)
        clear.loop_start()
        clear.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # drop the retained
        clear.disconnect()
        clear.loop_stop()


def test_a_wildcard_topic_is_a_final_error(monkeypatch, topic, ctx):
    use_connection(monkeypatch, "devices", MQTT_URL)
    spec = MessageSpec(broker="mqtt", connection="devices", to="a/#", body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, ctx)
    assert (info.value.error_class, "bad topic") == ("error", "bad topic")
    assert "mqtt connection 'devices' topic 'a/#': bad topic" in str(info.value)


def test_a_closed_port_is_a_retryable_connection_error(monkeypatch, closed_port, make_ctx):
    use_connection(monkeypatch, "devices", f"mqtt://user:pa55-word-x@127.0.0.1:{closed_port}")
    spec = MessageSpec(broker="mqtt", connection="devices", to="t", body=1)
    with pytest.raises(InstructionError) as info:
        publish(spec, make_ctx(timeout=2))
    assert (info.value.error_class, info.value.retryable) == ("connection", True)
    assert "pa55-word-x" not in str(info.value)


def test_broker_gone_then_back_reconnects(monkeypatch, topic, make_ctx):
    proxy = Proxy(1883)
    proxy.start()
    use_connection(monkeypatch, "devices", f"mqtt://127.0.0.1:{proxy.port}")
    subscriber = Subscriber(topic)
    ctx = make_ctx(timeout=3)
    try:
        publish(MessageSpec(broker="mqtt", connection="devices", to=topic, body=1), ctx)
        proxy.stop()
        with pytest.raises(InstructionError) as info:
            publish(MessageSpec(broker="mqtt", connection="devices", to=topic, body=2), ctx)
        assert info.value.retryable
        proxy.start()
        publish(MessageSpec(broker="mqtt", connection="devices", to=topic, body=3), ctx)
        received = [json.loads(subscriber.get().payload) for _ in range(2)]
    finally:
        proxy.stop()
        subscriber.close()
    assert received == [1, 3]
