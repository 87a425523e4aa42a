"""Publishing to NATS with ``nats-py``: core publish, or JetStream publish with its ack.

Subject ``to``; the idempotency key is the ``Nats-Msg-Id`` header (with one header per
``headers`` entry), so JetStream drops a repeat inside its duplicate window. Without
``jetstream`` the message is published and the connection flushed (the server has it; NATS
core keeps nothing for absent subscribers): ``{"message_id": key}``. With ``jetstream: true``
the attempt succeeds only on the stream's ack: ``{"stream", "seq", "duplicate", "message_id"}``;
a subject no stream captures is a final error.

nats-py is asyncio: each process runs one event loop on one daemon thread (started on first
use, and anew in a forked child) and keeps one client per URL on it; a call from a worker
thread waits for its coroutine with the attempt's timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.errors import ConnectionClosedError, MaxPayloadError, NoServersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError

from engine.connections import Cache
from engine.errors import InstructionError
from engine.forksafe import forget_after_fork
from engine.language.model import MessageSpec

from . import Outgoing, Target

T = TypeVar("T")


class _LoopThread:
    """One asyncio loop per process, on a daemon thread, for every NATS client."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        forget_after_fork(self._forget)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._get())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="nats-loop", daemon=True).start()
                self._loop = loop
            return self._loop

    def _forget(self) -> None:
        self._loop = None  # the parent's loop thread does not exist in the child
        self._lock = threading.Lock()


LOOP = _LoopThread()


def _close(client: Client) -> None:
    if not client.is_closed:
        LOOP.run(client.close(), 5)


_CLIENTS: Cache[Client] = Cache(close=_close)


async def _quiet(*_args: Any) -> None:
    """nats-py prints every connection error through its callbacks; ours are reported."""


def publish(target: Target, message: Outgoing, spec: MessageSpec, timeout: float) -> dict[str, Any]:
    headers = {**message.headers, "Nats-Msg-Id": message.message_id}
    client = _connected(target, timeout)
    try:
        if spec.jetstream:
            ack = LOOP.run(
                client.jetstream().publish(message.to, message.payload, timeout, headers=headers),
                timeout + 1,
            )
            return {"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate),
                    "message_id": message.message_id}
        LOOP.run(_publish_core(client, message, headers, timeout), timeout + 1)
        return {"message_id": message.message_id}
    except MaxPayloadError as exc:
        limit = client.max_payload
        raise target.fail(
            "the message is too large",
            f"{len(message.payload):,} bytes; the server accepts at most {limit:,} "
            "(its max_payload)",
            "error",
        ) from exc
    except NoStreamResponseError as exc:
        raise target.fail(
            "no JetStream stream captures this subject", "add the subject to a stream", "error"
        ) from exc
    except (NatsTimeout, TimeoutError) as exc:
        raise target.fail("no answer in time", f"no ack within {timeout:g}s", "timeout") from exc
    except (NatsError, OSError) as exc:
        _CLIENTS.discard(target.url, client)
        raise _classify(target, exc) from exc


async def _publish_core(
    client: Client, message: Outgoing, headers: dict[str, str], timeout: float
) -> None:
    await client.publish(message.to, message.payload, headers=headers)
    await client.flush(timeout)
    if not _answering(client):
        # nats-py's flush() falls back to writing the buffer, with no PING/PONG, once its
        # reading loop has ended: right after the server went away it returned as if the
        # server had the message, and the message was lost. Unconfirmed is a failure here
        # (retried; a consumer drops a repeat by its Nats-Msg-Id).
        raise ConnectionClosedError


def _answering(client: Client) -> bool:
    """The client is connected and its reading and flushing loops run, so that a flush is a
    PING answered by the server's PONG. (nats-py keeps the loops in private attributes; a
    client without them is taken as not answering.)"""
    loops = (getattr(client, "_reading_task", None), getattr(client, "_flusher_task", None))
    return client.is_connected and all(t is not None and not t.done() for t in loops)


def _connected(target: Target, timeout: float) -> Client:
    for _ in range(2):
        try:
            client = _CLIENTS.get(target.url, lambda: _open(target.url, timeout))
        except (TimeoutError, NatsError, OSError, ValueError) as exc:
            raise _classify(target, exc) from exc
        if _answering(client):
            return client
        _CLIENTS.discard(target.url, client)
    raise target.fail("cannot reach the broker", "the connection closed as it opened", "connection")


def _open(url: str, timeout: float) -> Client:
    connect = nats.connect(
        url,
        connect_timeout=timeout,
        max_reconnect_attempts=2,
        reconnect_time_wait=0.5,
        error_cb=_quiet,
        disconnected_cb=_quiet,
        name=f"async-states-{os.getpid()}",
    )
    return LOOP.run(connect, timeout * 4 + 2)


def _classify(target: Target, exc: BaseException) -> InstructionError:
    text = str(exc).lower()
    if "authorization" in text or "authentication" in text:
        return target.fail("the broker refused the credentials", exc, "error")
    if isinstance(exc, ValueError):
        return target.fail("bad URL", exc, "error")
    if isinstance(exc, TimeoutError):
        return target.fail("no answer in time", exc, "timeout")
    if isinstance(exc, NoServersError):
        return target.fail("cannot reach the broker", "no server answered", "connection")
    return target.fail("cannot reach the broker", exc, "connection")
