"""Consuming NATS with ``nats-py``: a core subject in a queue group, or a JetStream durable
pull consumer, acknowledged after the event is stored.

Core NATS: the listener subscribes to ``subject`` in the queue group ``group``, so clusters
sharing the group are competing consumers. Core NATS keeps nothing and has no
acknowledgement: a message published while no member is connected is lost. Use JetStream
where a message must not be lost.

JetStream (``stream``): a pull consumer named ``group`` (durable, explicit acks, filtered on
``subject``) on a stream that must exist; every cluster pulls from the same consumer (competing
consumers). A message is acknowledged (``ack_sync``: the server confirmed it) once its event is
stored; one that is not is redelivered after the consumer's ack wait (``ACK_WAIT_SECONDS``).

The message id is the ``Nats-Msg-Id`` header (what the ``message`` instruction sets), else for
JetStream ``<stream>/<sequence>``. The listener drives an asyncio loop of its own from its
thread, one call at a time, and handles each message between two calls: the handler stores
the event through Django's ORM, which refuses to run inside a running loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

from engine.language.model import SourceSpec
from engine.sources import Incoming

BATCH = 16
WAIT_SECONDS = 0.5
ACK_WAIT_SECONDS = 30.0


def consume(source: SourceSpec, url: str, handle: Callable[[Incoming], None],
            stop: threading.Event, connected: Callable[[], None]) -> None:
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(nats.connect(
            url, connect_timeout=5, allow_reconnect=False, error_cb=_quiet,
            disconnected_cb=_quiet, name="async-states-listener"))
        try:
            take = _jetstream if source.stream else _core
            take(loop, client, source, handle, stop, connected)
        finally:
            if not client.is_closed:
                loop.run_until_complete(client.close())
    finally:
        loop.close()


async def _quiet(*_args: object) -> None:
    """nats-py reports connection errors through callbacks; the listener reports its own."""


def _alive(client: Client) -> None:
    if not client.is_connected:
        raise ConnectionError("the connection closed")


def _core(loop: asyncio.AbstractEventLoop, client: Client, source: SourceSpec,
          handle: Callable[[Incoming], None], stop: threading.Event,
          connected: Callable[[], None]) -> None:
    subscription = loop.run_until_complete(
        client.subscribe(source.subject or "", queue=source.group))
    loop.run_until_complete(client.flush(5))
    connected()
    while not stop.is_set():
        _alive(client)
        try:
            msg = loop.run_until_complete(subscription.next_msg(timeout=WAIT_SECONDS))
        except (TimeoutError, NatsTimeout):
            continue
        handle(_incoming(msg, None))


def _jetstream(loop: asyncio.AbstractEventLoop, client: Client, source: SourceSpec,
               handle: Callable[[Incoming], None], stop: threading.Event,
               connected: Callable[[], None]) -> None:
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_SECONDS)
    subscription = loop.run_until_complete(client.jetstream().pull_subscribe(
        source.subject or "", durable=source.group, stream=source.stream, config=config))
    connected()
    while not stop.is_set():
        _alive(client)
        try:
            messages = loop.run_until_complete(subscription.fetch(BATCH, timeout=WAIT_SECONDS))
        except (TimeoutError, NatsTimeout):
            continue
        for msg in messages:
            handle(_incoming(msg, source.stream))
            loop.run_until_complete(msg.ack_sync(timeout=5))


def _incoming(msg: Msg, stream: str | None) -> Incoming:
    headers = dict(msg.headers or {})
    ident = headers.get("Nats-Msg-Id")
    if ident is None and stream is not None:
        ident = f"{stream}/{msg.metadata.sequence.stream}"
    return Incoming(body=msg.data, topic=msg.subject, headers=headers, id=ident)
