"""Consuming an MQTT topic with ``paho-mqtt`` 2.x over MQTT 5: QoS 1, a persistent session,
a shared subscription, and the PUBACK sent only after the event is stored.

The listener subscribes to ``$share/<group>/<topic>``: clusters in one group are competing
consumers (the broker gives each message to one of them). The session is persistent (clean
start off, ``SESSION_EXPIRY_SECONDS``) under a client id fixed for the host, process and
source, so after a dropped connection the broker resends, on the same session, every QoS 1
message it delivered and never saw acknowledged, and keeps the ones published meanwhile.
Acknowledgements are manual (``manual_ack``): a message whose event could not be stored is
never acknowledged, and comes back.

paho's network loop runs on the listener's own thread (``loop()``), so a message is handled
on the thread that owns the database connection. Its id is the MQTT 5 user property
``message_id`` (what the ``message`` instruction sets); headers are the user properties.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from engine.language.model import SourceSpec
from engine.sources import Incoming

SESSION_EXPIRY_SECONDS = 3600
LOOP_SECONDS = 0.5
CONNECT_SECONDS = 10.0


class MqttRefused(ConnectionError):
    """The broker refused the connection or the subscription (its reason code)."""


def client_id(source: SourceSpec) -> str:
    digest = hashlib.sha256(repr(source.key).encode()).hexdigest()[:10]
    return f"async-states-{socket.gethostname()[:20]}-{os.getpid()}-{digest}"


def consume(source: SourceSpec, url: str, handle: Callable[[Incoming], None],
            stop: threading.Event, connected: Callable[[], None]) -> None:
    client = _client(source, url)
    ready: dict[str, Any] = {}
    client.on_connect = lambda c, _u, _f, reason, _p: _on_connect(c, source, reason, ready)
    client.on_subscribe = lambda _c, _u, _m, reasons, _p: ready.setdefault("granted", reasons)
    client.on_message = lambda c, _u, msg: _on_message(c, msg, handle)
    parts = urlsplit(url)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
    client.connect(parts.hostname or "localhost", parts.port or _port(parts.scheme),
                   keepalive=30, clean_start=False, properties=properties)
    try:
        _await_subscription(client, ready, stop)
        connected()
        while not stop.is_set():
            rc = client.loop(LOOP_SECONDS)
            if rc != paho.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"connection lost: {paho.error_string(rc)}")
    finally:
        client.disconnect()


def _client(source: SourceSpec, url: str) -> paho.Client:
    parts = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id(source),
                         protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set()
    client.connect_timeout = CONNECT_SECONDS
    return client


def _on_connect(client: paho.Client, source: SourceSpec, reason: Any,
                ready: dict[str, Any]) -> None:
    if reason.is_failure:
        ready["refused"] = str(reason)
        return
    client.subscribe(f"$share/{source.group}/{source.topic}", qos=1)


def _await_subscription(client: paho.Client, ready: dict[str, Any],
                        stop: threading.Event) -> None:
    """Run the loop until the broker granted the subscription (QoS 1) or refused."""
    waited = 0.0
    while "granted" not in ready and not stop.is_set():
        if "refused" in ready:
            raise MqttRefused(f"the broker refused the connection: {ready['refused']}")
        if waited > CONNECT_SECONDS:
            raise TimeoutError("no CONNACK or SUBACK in time")
        rc = client.loop(LOOP_SECONDS)
        if rc != paho.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"connection lost: {paho.error_string(rc)}")
        waited += LOOP_SECONDS
    granted = ready.get("granted") or []
    if granted and granted[0].is_failure:
        raise MqttRefused(f"the broker refused the subscription: {granted[0]}")


def _on_message(client: paho.Client, msg: paho.MQTTMessage,
                handle: Callable[[Incoming], None]) -> None:
    headers = dict(getattr(msg.properties, "UserProperty", None) or [])
    handle(Incoming(body=msg.payload, topic=msg.topic, headers=headers,
                    id=headers.get("message_id")))
    client.ack(msg.mid, msg.qos)


def _port(scheme: str) -> int:
    return 8883 if scheme == "mqtts" else 1883
