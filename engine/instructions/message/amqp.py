"""Publishing to RabbitMQ (AMQP 0-9-1) with ``pika``: persistent messages, publisher confirms.

``exchange`` (default: the default exchange, which routes to the queue named by the routing
key) and routing key ``to``. Each message is persistent (delivery mode 2), JSON, with the
idempotency key as its ``message_id``, and published ``mandatory``: the attempt succeeds only
when the broker confirmed it (``{"confirmed": true, "message_id": key}``). A message no queue
is bound to receive is returned by the broker and fails the attempt (final: retrying cannot
bind a queue); a negative acknowledgement is ``connection`` (retryable).

A ``BlockingConnection`` is not thread-safe: each process keeps one connection and channel
per URL, used under a lock. Before a publish the connection is asked to process pending
events, which notices one the broker closed while idle; it is then reopened once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pika
from pika import exceptions as px
from pika.adapters.blocking_connection import BlockingChannel

from engine.connections import Cache
from engine.errors import InstructionError
from engine.language.model import MessageSpec

from . import Outgoing, Target


@dataclass(slots=True)
class _Amqp:
    connection: pika.BlockingConnection
    channel: BlockingChannel
    lock: threading.Lock = field(default_factory=threading.Lock)


def _close(client: _Amqp) -> None:
    if client.connection.is_open:
        client.connection.close()


_CLIENTS: Cache[_Amqp] = Cache(close=_close)


def publish(target: Target, message: Outgoing, spec: MessageSpec, timeout: float) -> dict[str, Any]:
    exchange = spec.exchange or ""
    properties = pika.BasicProperties(
        content_type=message.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message.message_id,
        headers=message.headers or None,
    )
    client = _live_client(target, timeout)
    try:
        with client.lock:
            client.channel.basic_publish(
                exchange, message.to, message.payload, properties, mandatory=True
            )
    except (px.AMQPError, OSError) as exc:
        _CLIENTS.discard(target.url, client)
        raise _classify(target, exc, exchange) from exc
    return {"confirmed": True, "message_id": message.message_id}


def _live_client(target: Target, timeout: float) -> _Amqp:
    """The process's open client for the target, reopened if the broker closed it."""
    for _ in range(2):
        try:
            client = _CLIENTS.get(target.url, lambda: _open(target.url, timeout))
        except (px.AMQPError, OSError, ValueError) as exc:
            raise _classify(target, exc, "") from exc
        try:
            with client.lock:
                client.connection.process_data_events(0)
            if client.channel.is_open:
                return client
        except (px.AMQPError, OSError):
            pass
        _CLIENTS.discard(target.url, client)
    raise target.fail(
        "cannot reach the broker", "the connection closed as it was opened", "connection"
    )


def _open(url: str, timeout: float) -> _Amqp:
    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.stack_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.confirm_delivery()
    return _Amqp(connection, channel)


def _classify(target: Target, exc: BaseException, exchange: str) -> InstructionError:
    if isinstance(exc, ValueError):
        return target.fail("bad URL", exc, "error")
    if _refused_credentials(exc):
        return target.fail("the broker refused the credentials", _reason(exc), "error")
    if isinstance(exc, px.UnroutableError):
        where = f"exchange {exchange!r}" if exchange else "the default exchange"
        return target.fail(
            "unroutable", f"no queue is bound to receive it from {where}", "error"
        )
    if isinstance(exc, px.NackError):
        return target.fail("the broker refused the message (nack)", "", "connection")
    if isinstance(exc, px.ChannelClosedByBroker):
        return target.fail("the broker refused the publish", _reason(exc), "error")
    if isinstance(exc, (px.ConnectionBlockedTimeout, TimeoutError)):
        return target.fail("no answer in time", _reason(exc), "timeout")
    return target.fail("cannot reach the broker", _reason(exc), "connection")


def _refused_credentials(exc: BaseException) -> bool:
    if isinstance(exc, (px.ProbableAuthenticationError, px.AuthenticationError,
                        px.ProbableAccessDeniedError)):
        return True
    if isinstance(exc, px.ConnectionClosedByBroker):
        return exc.reply_code in (403, 530)  # ACCESS_REFUSED, NOT_ALLOWED (vhost)
    if isinstance(exc, px.AMQPConnectionError) and exc.args:
        inner = [arg for arg in exc.args if isinstance(arg, BaseException)]
        return any(_refused_credentials(arg) for arg in inner)
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc) or repr(exc)
    return text if text.strip("()'\" ,") else type(exc).__name__
