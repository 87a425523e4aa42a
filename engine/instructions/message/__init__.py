"""The ``message`` instruction: publish one message to RabbitMQ, MQTT, NATS or Redis.

The broker is reached through a named connection (``connection: orders``, whose URL the
environment holds: ``engine.connections``) or, as before connections existed, a ``url``
template. One module per broker speaks its protocol (``amqp``, ``mqtt``, ``nats``, ``redis``);
this one renders the spec into an ``Outgoing`` message, finds the ``Target`` and hands both to
the broker's ``publish``.

What every broker shares:

- The body is sent as JSON (``application/json``).
- The instruction's idempotency key travels as the message's id (AMQP ``message_id``, NATS
  ``Nats-Msg-Id``, the MQTT 5 user property ``message_id``, the Redis stream field
  ``message_id``), so a consumer can drop the repeat that at-least-once delivery allows.
- An attempt succeeds only when the broker has taken the message (publisher confirms, QoS
  acknowledgements, JetStream acks, Redis' reply); otherwise it fails with an error class:
  ``connection`` (cannot reach the broker, or the broker dropped the connection or refused the
  message: retryable), ``timeout`` (no answer in time: retryable) or ``error`` (refused
  credentials, a missing exchange or stream, a malformed option: final).
- Messages name the connection (``amqp connection 'orders'``), or for a ``url`` the host, port
  and path, never the URL, whose password ``engine.connections.scrub`` removes from a driver's
  own error text as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from engine import connections
from engine.errors import InstructionError
from engine.instructions import ExecContext, instruction_error
from engine.language.model import MessageSpec


@dataclass(frozen=True, slots=True)
class Target:
    """Where a message goes: the URL (never shown) and how messages name it."""

    broker: str
    url: str
    label: str  # "connection 'orders'" or "127.0.0.1:6379/0"
    to: str  # the destination as written in the task (no rendered secret)

    @property
    def where(self) -> str:
        return f"{self.broker} {self.label} {_DESTINATION[self.broker]} {self.to!r}"

    def fail(self, what: str, exc: BaseException | str, error_class: str) -> InstructionError:
        """An ``InstructionError`` naming the target, with the driver's detail scrubbed."""
        detail = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
        detail = connections.scrub(detail, self.url, self.label)
        return instruction_error(f"{self.where}: {what}: {detail}", error_class)


_DESTINATION = {
    "amqp": "routing key",
    "mqtt": "topic",
    "nats": "subject",
    "redis": "channel",
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message."""

    to: str
    payload: bytes
    headers: dict[str, str]
    message_id: str
    content_type: str = "application/json"  # where the broker has a place for it (amqp, mqtt)


Publisher = Callable[[Target, Outgoing, MessageSpec, float], dict[str, Any]]


class MessageExecutor:
    kind = "message"
    side_effects = True
    spec_type = MessageSpec

    def execute(self, spec: MessageSpec, ctx: ExecContext) -> dict[str, Any]:
        """Publish ``spec.body`` once; the result is the broker's receipt (see docs).

        Raises:
            InstructionError: see the module docstring.
        """
        publish = publisher(spec.broker)
        target = _target(spec, ctx)
        outgoing = Outgoing(
            to=str(ctx.render(spec.to)),
            payload=_encode(ctx.render(spec.body)),
            headers=_headers(spec, ctx),
            message_id=ctx.idempotency_key,
        )
        return publish(target, outgoing, spec, ctx.timeout)


def publisher(broker: str) -> Publisher:
    """The ``publish`` function of ``broker``'s module (also used for lifecycle events)."""
    from engine.instructions.message import amqp, mqtt, nats, redis

    publishers: dict[str, Publisher] = {
        "amqp": amqp.publish,
        "mqtt": mqtt.publish,
        "nats": nats.publish,
        "redis": redis.publish,
    }
    if broker not in publishers:
        raise InstructionError(
            f"unknown message broker {broker!r} (known: {', '.join(sorted(publishers))})"
        )
    return publishers[broker]


def _target(spec: MessageSpec, ctx: ExecContext) -> Target:
    if spec.connection is not None:
        url = connections.url_of(spec.connection)
        connections.check_serves(spec.connection, url, spec.broker)
        label = f"connection {spec.connection!r}"
    else:
        url = str(ctx.render(spec.url or ""))
        label = describe(url)
    return Target(broker=spec.broker, url=url, label=label, to=spec.to)


def describe(url: str) -> str:
    """``host:port/path`` of a URL, for messages (the URL may carry a password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(malformed URL)"
    where = parts.hostname or "localhost"
    return f"{where}:{port}{parts.path}" if port else f"{where}{parts.path}"


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise InstructionError(f"message: the body does not encode as JSON: {exc}") from exc


def _headers(spec: MessageSpec, ctx: ExecContext) -> dict[str, str]:
    """Header values as text: strings as they are, anything else as JSON."""
    headers = {}
    for name, value in spec.headers:
        rendered = ctx.render(value)
        headers[str(name)] = rendered if isinstance(rendered, str) else json.dumps(rendered)
    return headers


EXECUTOR = MessageExecutor()
