"""The ``message`` instruction: publish one message to a broker.

Today only ``redis`` is supported: ``PUBLISH`` of the JSON-encoded body on channel ``to``; the
result is ``{"receivers": n}``, the number of subscribers that got it (Redis pub/sub does not
keep messages nobody listened for). ``amqp``, ``mqtt`` and ``nats`` fail with a clear error
until their integrations land. This module owns one Redis client (and its connection pool) per
(process, URL, timeout) and the classification: cannot connect -> ``connection``, no answer in
time -> ``timeout`` (both retryable), refused credentials or anything else -> ``error``.
Messages name the broker by host, port and database, never by the URL, and the channel as
written in the task.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any
from urllib.parse import urlsplit

import redis

from engine.errors import InstructionError
from engine.instructions import ExecContext, instruction_error
from engine.language.model import MessageSpec

SUPPORTED_BROKERS = frozenset({"redis"})
PLANNED_BROKERS = frozenset({"amqp", "mqtt", "nats"})

_clients: dict[tuple[int, str, float], redis.Redis] = {}
_clients_lock = threading.Lock()


class MessageExecutor:
    kind = "message"
    side_effects = True
    spec_type = MessageSpec

    def execute(self, spec: MessageSpec, ctx: ExecContext) -> dict[str, Any]:
        """Publish ``spec.body`` once.

        Returns:
            ``{"receivers": n}`` for Redis.

        Raises:
            InstructionError: see the module docstring; also for a broker that is not
                supported, headers on Redis (pub/sub has nowhere to put them) and a body that
                does not encode as JSON.
        """
        _check_broker(spec)
        url = str(ctx.render(spec.url))
        channel = str(ctx.render(spec.to))
        payload = _encode(ctx.render(spec.body))
        where = f"redis {describe(url)} channel {spec.to!r}"  # as written: no rendered secret
        try:
            receivers = _client(url, ctx.timeout).publish(channel, payload)
        except (redis.RedisError, ValueError) as exc:  # ValueError: a malformed URL
            raise _classify(exc, where) from exc
        return {"receivers": receivers}


def _check_broker(spec: MessageSpec) -> None:
    if spec.broker in PLANNED_BROKERS:
        raise InstructionError(
            f"message broker {spec.broker!r} is not supported yet: only redis is available "
            f"in this version ({spec.broker} comes with a later integration)"
        )
    if spec.broker not in SUPPORTED_BROKERS:
        raise InstructionError(
            f"unknown message broker {spec.broker!r} "
            f"(known: {', '.join(sorted(SUPPORTED_BROKERS | PLANNED_BROKERS))})"
        )
    if spec.headers:
        raise InstructionError(
            "redis pub/sub messages have no headers; put what you need in the body"
        )


def _encode(body: Any) -> str:
    try:
        return json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InstructionError(f"message: the body does not encode as JSON: {exc}") from exc


def describe(url: str) -> str:
    """``host:port/db`` of a Redis URL, for messages (the URL may carry a password)."""
    parts = urlsplit(url)
    port = parts.port or 6379
    return f"{parts.hostname or 'localhost'}:{port}{parts.path or '/0'}"


def _client(url: str, timeout: float) -> redis.Redis:
    # A Redis client is thread-safe with its own pool, so one per process serves all threads;
    # the pid in the key keeps a forked child off its parent's sockets.
    key = (os.getpid(), url, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            _clients[key] = client
        return client


# Checked in order: an authentication failure is a ConnectionError to redis-py, but retrying
# with the same password will not help.
_FAILURES: tuple[tuple[type[Exception], str, str], ...] = (
    (redis.AuthenticationError, "error", "authentication failed"),
    (redis.TimeoutError, "timeout", "no answer in time"),
    (redis.ConnectionError, "connection", "cannot reach the broker"),
)


def _classify(exc: Exception, where: str) -> InstructionError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    for exc_type, error_class, what in _FAILURES:
        if isinstance(exc, exc_type):
            return instruction_error(f"{where}: {what}: {detail}", error_class)
    return instruction_error(f"{where}: publish failed: {detail}")


EXECUTOR = MessageExecutor()
