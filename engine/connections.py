"""Named connections: broker URLs configured in the environment, opened once per process.

A task names a connection (``connection: orders``); the deployment configures it with the
environment variable ``ASYNC_STATES_CONNECTION_ORDERS=amqp://user:pass@host:5672/vhost``. The
URL, which usually carries a password, therefore never appears in a task file, in the database,
in a log line or in an error: everything said about a connection names it (``connection
'orders'``), and ``scrub`` removes the URL and its password from a library's error text.

This module owns the whole concept:

- reading the configuration (``url_of``, ``configured``), through ``environ()``, the one place
  that reads ``os.environ``;
- what a URL's scheme speaks (``SCHEMES``: a broker, ``grpc`` or a database), for
  ``loadtasks --check`` and for the executors;
- the per-process cache of open clients (``CONNECTIONS``): opened lazily on first use, reused by
  every attempt in the process, forgotten after a failure (the next attempt reopens), and
  forgotten in a forked child (``engine.forksafe``), which must never share its parent's
  sockets.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote, quote_plus, unquote, urlsplit

from engine.errors import InstructionError
from engine.forksafe import forget_after_fork

CONNECTION_PREFIX = "ASYNC_STATES_CONNECTION_"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# URL scheme -> what it speaks: a broker (``message.broker``), ``grpc`` (``rpc`` with
# ``protocol: grpc``) or a database system (``db``).
SCHEMES: Mapping[str, str] = {
    "amqp": "amqp",
    "amqps": "amqp",
    "mqtt": "mqtt",
    "mqtts": "mqtt",
    "nats": "nats",
    "tls": "nats",
    "redis": "redis",
    "rediss": "redis",
    "grpc": "grpc",
    "grpcs": "grpc",
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
}

# The database systems a ``db`` instruction speaks (values of ``SCHEMES``).
DATABASES = frozenset({"mysql", "postgresql", "sqlite"})


class ConnectionNotConfigured(InstructionError):
    """A task names a connection that the worker's environment does not define (final)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"connection {name!r} is not configured: set the environment variable "
            f"{env_name(name)} to its URL (for example amqp://user:password@host:5672/vhost) "
            "in the worker's environment",
            error_class="error",
            retryable=False,
        )


def environ() -> Mapping[str, str]:
    """The environment connections are read from (the one read of ``os.environ``)."""
    return os.environ


def env_name(name: str) -> str:
    """``orders`` -> ``ASYNC_STATES_CONNECTION_ORDERS``."""
    return f"{CONNECTION_PREFIX}{name.upper()}"


def url_of(name: str, env: Mapping[str, str] | None = None) -> str:
    """The URL configured for connection ``name``.

    Raises:
        ConnectionNotConfigured: no variable, or an empty one, for ``name``.
    """
    url = (environ() if env is None else env).get(env_name(name), "").strip()
    if not url:
        raise ConnectionNotConfigured(name)
    return url


def configured(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{name: scheme}`` of every configured connection (no URL, no password)."""
    env = environ() if env is None else env
    return {
        key[len(CONNECTION_PREFIX) :].lower(): scheme_of(value)
        for key, value in env.items()
        if key.startswith(CONNECTION_PREFIX) and value.strip()
    }


def scheme_of(url: str) -> str:
    """The lower-case scheme of ``url`` (``""`` when it has none)."""
    return url.partition("://")[0].lower() if "://" in url else ""


def serves(url: str, *speaks: str) -> bool:
    """Whether a connection with this URL speaks one of ``speaks`` (``amqp``, ``grpc``...)."""
    return SCHEMES.get(scheme_of(url)) in speaks


def schemes_for(*speaks: str) -> str:
    """The schemes that speak one of ``speaks``, for messages: ``grpc or grpcs``."""
    schemes = sorted(s for s, spoken in SCHEMES.items() if spoken in speaks)
    return " or ".join(filter(None, (", ".join(schemes[:-1]), schemes[-1])))


def served(speaks: tuple[str, ...]) -> str:
    """What a connection must serve, for messages: ``the amqp broker``, ``gRPC``."""
    if speaks == ("grpc",):
        return "gRPC"
    if set(speaks) <= DATABASES:
        return "a database (db)"
    return f"the {' or '.join(speaks)} broker"


def check_serves(name: str, url: str, *speaks: str) -> None:
    """Refuse a connection whose scheme speaks none of ``speaks`` (a configuration error:
    final)."""
    if not serves(url, *speaks):
        raise InstructionError(
            f"connection {name!r} is a {scheme_of(url) or 'scheme-less'} URL, which does not "
            f"serve {served(speaks)} (expected {schemes_for(*speaks)}); fix {env_name(name)}",
            error_class="error",
            retryable=False,
        )


def scrub(text: str, url: str, label: str) -> str:
    """``text`` with ``url``, and the password (and user:password) inside it, replaced.

    A driver's exception may quote the URL it was given, or its password; what we show names
    the connection instead (``label``) and writes ``***`` for a password.
    """
    if url:
        text = text.replace(url, label)
    written = _password(url)
    if written:
        plain = unquote(written)
        forms = {written, plain, quote(plain, safe=""), quote_plus(plain)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
    return " ".join(text.split())


def _password(url: str) -> str | None:
    """The password as written in ``url`` (percent-encoded), or None."""
    try:
        return urlsplit(url.strip()).password
    except ValueError:
        return None


def passwords(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The passwords of every configured connection (as written and decoded), for redaction
    of anything stored."""
    env = environ() if env is None else env
    found = set()
    for key, value in env.items():
        written = _password(value) if key.startswith(CONNECTION_PREFIX) else None
        if written:
            found |= {written, unquote(written)}
    return frozenset(found)


C = TypeVar("C")


class Cache(Generic[C]):
    """Open clients of one process, by key: opened lazily, dropped after a failure or a fork.

    ``get(key, open_)`` returns the client for ``key``, calling ``open_()`` the first time (and
    again after ``discard``). Opening happens under a per-key lock, so two threads of one
    worker never open the same connection twice; different keys open in parallel.
    """

    def __init__(self, close: Callable[[C], Any]) -> None:
        self._close = close
        self._clients: dict[Any, C] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()
        forget_after_fork(self._forget_all)

    def get(self, key: Any, open_: Callable[[], C]) -> C:
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                return client
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                client = self._clients.get(key)
            if client is None:
                client = open_()
                with self._lock:
                    self._clients[key] = client
            return client

    def discard(self, key: Any, client: C | None = None) -> None:
        """Forget (and close) the client for ``key``; with ``client``, only if it is that one."""
        with self._lock:
            current = self._clients.get(key)
            if current is None or (client is not None and current is not client):
                return
            del self._clients[key]
        try:
            self._close(current)
        except Exception:  # closing a broken connection may fail in any way; it is gone anyway
            pass

    def close_all(self) -> None:
        """Close every client (tests, and a worker shutting down)."""
        for key in list(self._clients):
            self.discard(key)

    def _forget_all(self) -> None:
        # In a forked child the parent's sockets and threads are not ours: drop them without
        # closing (closing would speak on the parent's connection) and reset the locks, which
        # may have been held by a parent thread at fork time.
        self._clients = {}
        self._locks = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)
