"""Publishing to an MQTT broker with ``paho-mqtt`` 2.x over MQTT 5.

Topic ``to``, ``qos`` (0, 1 or 2; default 1) and ``retain``. The idempotency key travels as
the MQTT 5 user property ``message_id`` (with one user property per header) and the content
type is ``application/json``. With QoS 1 or 2 the attempt succeeds only when the broker has
acknowledged the message (PUBACK, or PUBCOMP for QoS 2); QoS 0 succeeds once it is written.
The result is ``{"qos": q, "message_id": key}``.

Each process keeps one client per URL, connected with a clean start and driven by paho's own
network thread (paho's publish is thread-safe). A client that lost its connection is closed
and a new one connected on the next attempt.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from engine.connections import Cache
from engine.language.model import MessageSpec

from . import Outgoing, Target

# CONNACK reason codes that retrying with the same settings cannot fix.
REFUSED = frozenset({"Bad user name or password", "Not authorized", "Banned"})


@dataclass(slots=True)
class _Mqtt:
    client: paho.Client
    connected: threading.Event = field(default_factory=threading.Event)
    reason: ReasonCode | None = None


def _close(state: _Mqtt) -> None:
    state.client.disconnect()
    state.client.loop_stop()


_CLIENTS: Cache[_Mqtt] = Cache(close=_close)


class _Refused(Exception):
    """The broker answered CONNECT with a failure reason code."""


def publish(target: Target, message: Outgoing, spec: MessageSpec, timeout: float) -> dict[str, Any]:
    state = _connected(target, timeout)
    try:
        info = state.client.publish(
            message.to, message.payload, spec.qos, spec.retain, _properties(message)
        )
    except ValueError as exc:  # a wildcard or empty topic
        raise target.fail("bad topic", exc, "error") from exc
    if info.rc != paho.MQTT_ERR_SUCCESS:
        _CLIENTS.discard(target.url, state)
        raise target.fail("cannot reach the broker", paho.error_string(info.rc), "connection")
    try:
        info.wait_for_publish(timeout)
    except RuntimeError as exc:  # the connection dropped while waiting
        _CLIENTS.discard(target.url, state)
        raise target.fail("cannot reach the broker", exc, "connection") from exc
    if not info.is_published():
        _CLIENTS.discard(target.url, state)
        raise target.fail(
            "no answer in time", f"no acknowledgement for QoS {spec.qos} within {timeout:g}s",
            "timeout",
        )
    return {"qos": spec.qos, "message_id": message.message_id}


def _properties(message: Outgoing) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)
    properties.ContentType = message.content_type
    properties.UserProperty = [("message_id", message.message_id), *message.headers.items()]
    return properties


def _connected(target: Target, timeout: float) -> _Mqtt:
    """The process's client for the target, reconnected if it lost its connection."""
    for _ in range(2):
        try:
            state = _CLIENTS.get(target.url, lambda: _open(target.url, timeout))
        except _Refused as exc:
            if str(exc) in REFUSED:
                raise target.fail("the broker refused the credentials", exc, "error") from exc
            raise target.fail("the broker refused the connection", exc, "connection") from exc
        except TimeoutError as exc:
            raise target.fail("no answer in time", "no CONNACK", "timeout") from exc
        except (OSError, ValueError) as exc:
            error_class = "error" if isinstance(exc, ValueError) else "connection"
            raise target.fail("cannot reach the broker", exc, error_class) from exc
        if state.client.is_connected():
            return state
        _CLIENTS.discard(target.url, state)
    raise target.fail("cannot reach the broker", "the connection closed as it opened", "connection")


def _open(url: str, timeout: float) -> _Mqtt:
    parts = urlsplit(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"async-states-{os.getpid()}-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set()
    client.connect_timeout = timeout
    state = _Mqtt(client)

    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any):
        state.reason = reason
        state.connected.set()

    client.on_connect = on_connect
    client.connect(parts.hostname or "localhost", parts.port or _default_port(parts.scheme))
    client.loop_start()
    if not state.connected.wait(timeout):
        _close(state)
        raise TimeoutError
    if state.reason is not None and state.reason.is_failure:
        _close(state)
        raise _Refused(str(state.reason))
    return state


def _default_port(scheme: str) -> int:
    return 8883 if scheme == "mqtts" else 1883


