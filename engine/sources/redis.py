"""Consuming Redis: a pub/sub ``channel``, or a ``stream`` through a consumer group.

A stream is read with ``XREADGROUP`` in the consumer group ``group`` (created at the
stream's end, with the stream, if missing), as the consumer ``<host>-<pid>``; an entry is
acknowledged (``XACK``) once its event is stored. Clusters sharing the group are competing
consumers. On connecting, the listener first reads its own pending entries (delivered before a
crash, never acknowledged), and every ``CLAIM_EVERY`` seconds it claims the entries another
consumer left pending for ``CLAIM_IDLE_MS`` (a cluster that died), so none is stranded.

An entry's ``body`` field is the body and ``message_id`` its id (what the ``message``
instruction writes); the other fields are headers. An entry without ``body`` is sent as the
JSON of its fields. Without ``message_id`` the id is ``<stream>/<entry id>``.

Pub/sub keeps nothing and has no acknowledgement: a message published while the listener is
disconnected is lost, and every cluster subscribed hears every message (the event id makes
the repeats harmless). Use a stream where a message must not be lost.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from engine.language.model import SourceSpec
from engine.sources import Incoming

BATCH = 16
BLOCK_MS = 500
CLAIM_EVERY = 10.0
CLAIM_IDLE_MS = 60_000


def client_name() -> str:
    """What ``CLIENT LIST`` calls this process's listener connections."""
    return f"async-states-listener-{socket.gethostname()[:20]}-{os.getpid()}"


def consume(source: SourceSpec, url: str, handle: Callable[[Incoming], None],
            stop: threading.Event, connected: Callable[[], None]) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5,
                                  health_check_interval=10, client_name=client_name())
    try:
        client.ping()
        if source.stream:
            _stream(client, source, handle, stop, connected)
        else:
            _channel(client, source, handle, stop, connected)
    finally:
        client.close()


def _channel(client: redis.Redis, source: SourceSpec, handle: Callable[[Incoming], None],
             stop: threading.Event, connected: Callable[[], None]) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(source.channel)
        pubsub.get_message(timeout=1.0)  # the subscription's confirmation
        connected()
        while not stop.is_set():
            item = pubsub.get_message(timeout=BLOCK_MS / 1000)
            if item and item["type"] == "message":
                handle(Incoming(body=item["data"], topic=source.channel or "", headers={}))
    finally:
        pubsub.close()


def _stream(client: redis.Redis, source: SourceSpec, handle: Callable[[Incoming], None],
            stop: threading.Event, connected: Callable[[], None]) -> None:
    stream, group = source.stream or "", source.group
    try:
        client.xgroup_create(stream, group, id="$", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    connected()
    _take(client, source, handle, client.xreadgroup(group, consumer, {stream: "0"}, count=1000))
    claimed_at = 0.0
    while not stop.is_set():
        if time.monotonic() - claimed_at > CLAIM_EVERY:
            _, entries, *_ = client.xautoclaim(stream, group, consumer, CLAIM_IDLE_MS,
                                               count=BATCH)
            _take(client, source, handle, [[stream, entries]])
            claimed_at = time.monotonic()
        reply = client.xreadgroup(group, consumer, {stream: ">"}, count=BATCH, block=BLOCK_MS)
        _take(client, source, handle, reply)


def _take(client: redis.Redis, source: SourceSpec, handle: Callable[[Incoming], None],
          reply: list) -> None:
    for _stream_name, entries in reply or []:
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream while pending
                client.xack(source.stream, source.group, entry_id)
                continue
            handle(_incoming(source, entry_id, fields))
            client.xack(source.stream, source.group, entry_id)


def _incoming(source: SourceSpec, entry_id: bytes, fields: dict[bytes, bytes]) -> Incoming:
    text = {k.decode(errors="replace"): v for k, v in fields.items()}
    body = text.pop("body", None)
    ident = text.pop("message_id", None)
    headers = {k: v.decode(errors="replace") for k, v in text.items()}
    if body is None:
        body, headers = json.dumps(headers).encode(), {}
    ident_text = (ident.decode(errors="replace") if ident
                  else f"{source.stream}/{entry_id.decode()}")
    return Incoming(body=body, topic=source.stream or "", headers=headers, id=ident_text)
