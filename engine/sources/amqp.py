"""Consuming a RabbitMQ queue (AMQP 0-9-1) with ``pika``, acknowledging after the event.

The queue is declared durable; with ``exchange`` it is bound to that exchange (declared
durable, of type topic) by the ``binding`` key, and named ``async_states.<exchange>.<binding>``
unless ``queue`` names it. Several clusters consuming one queue are competing consumers: the
broker gives each message to one of them, and gives an unacknowledged one to another when its
consumer's connection closes. At most ``PREFETCH`` messages are in flight per listener.

The message's id is its ``message_id`` property (what the ``message`` instruction sets);
headers are its AMQP headers (values as text) and the topic is the routing key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pika

from engine.language.model import SourceSpec
from engine.sources import Incoming

PREFETCH = 16
# How long the consuming loop waits for a message before it looks at ``stop``.
IDLE_SECONDS = 0.5


def queue_name(source: SourceSpec) -> str:
    return source.queue or f"async_states.{source.exchange}.{source.binding}"


def consume(source: SourceSpec, url: str, handle: Callable[[Incoming], None],
            stop: threading.Event, connected: Callable[[], None]) -> None:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.heartbeat = 30
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        queue = queue_name(source)
        channel.queue_declare(queue, durable=True)
        if source.exchange:
            channel.exchange_declare(source.exchange, exchange_type="topic", durable=True)
            channel.queue_bind(queue, source.exchange, routing_key=source.binding)
        channel.basic_qos(prefetch_count=PREFETCH)
        connected()
        for method, properties, body in channel.consume(queue, inactivity_timeout=IDLE_SECONDS):
            if stop.is_set():
                break
            if method is None:
                continue
            handle(Incoming(body=body, topic=method.routing_key, headers=_headers(properties),
                            id=properties.message_id))
            channel.basic_ack(method.delivery_tag)
    finally:
        if connection.is_open:
            try:
                connection.close()  # unacknowledged messages go back to the queue
            except Exception:  # closing a broken connection: it is gone anyway
                pass


def _headers(properties: pika.BasicProperties) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else _text(v)
            for k, v in (properties.headers or {}).items()}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return json.dumps(value, default=str)
