"""Publishing to Redis: ``PUBLISH`` on a channel, or ``XADD`` to a stream (``stream: true``).

Pub/sub delivers only to the subscribers listening at that moment and the result says how many
(``{"receivers": n}``); it has nowhere to put headers or an id, so headers are refused. A
stream keeps the message: the entry's fields are ``body`` (the JSON), ``message_id`` (the
idempotency key) and one field per header; the result is ``{"id": entry id, "message_id": key}``.

One client (thread-safe, with its own pool) per process, URL and timeout; redis-py reconnects
its pooled sockets by itself, and a client whose publish failed is dropped anyway.
"""

from __future__ import annotations

from typing import Any

import redis

from engine.connections import Cache
from engine.errors import InstructionError
from engine.language.model import MessageSpec

from . import Outgoing, Target

RESERVED_FIELDS = frozenset({"body", "message_id"})

_CLIENTS: Cache[redis.Redis] = Cache(close=lambda client: client.close())

# Checked in order: an authentication failure is a ConnectionError to redis-py, but retrying
# with the same password will not help.
_FAILURES: tuple[tuple[type[Exception], str, str], ...] = (
    (redis.AuthenticationError, "error", "the broker refused the credentials"),
    (redis.TimeoutError, "timeout", "no answer in time"),
    (redis.ConnectionError, "connection", "cannot reach the broker"),
)


def publish(target: Target, message: Outgoing, spec: MessageSpec, timeout: float) -> dict[str, Any]:
    if message.headers and not spec.stream:
        raise InstructionError(
            "redis pub/sub messages have no headers; put what you need in the body, or "
            "publish to a stream (stream: true), whose entries carry them as fields"
        )
    key = (target.url, timeout)
    try:
        client = _CLIENTS.get(key, lambda: _open(target.url, timeout))
        if spec.stream:
            entry = client.xadd(message.to, _fields(message))
            return {"id": entry.decode(), "message_id": message.message_id}
        return {"receivers": client.publish(message.to, message.payload)}
    except ValueError as exc:  # a malformed URL
        raise target.fail("bad URL", exc, "error") from exc
    except redis.RedisError as exc:
        _CLIENTS.discard(key)
        raise _classify(target, exc) from exc


def _open(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _fields(message: Outgoing) -> dict[str, Any]:
    clash = RESERVED_FIELDS & message.headers.keys()
    if clash:
        raise InstructionError(
            f"redis stream entry: header {sorted(clash)[0]!r} would overwrite a field the "
            f"message sets itself ({', '.join(sorted(RESERVED_FIELDS))}); rename it"
        )
    return {"body": message.payload, "message_id": message.message_id, **message.headers}


def _classify(target: Target, exc: Exception) -> InstructionError:
    for exc_type, error_class, what in _FAILURES:
        if isinstance(exc, exc_type):
            return target.fail(what, exc, error_class)
    return target.fail("publish failed", exc, "error")
