"""The ``db`` instruction: one SQL statement with bound parameters, in its own transaction.

It owns reaching a database named by a connection (``connection: shop``, whose URL the
environment holds: ``engine.connections``) or by a URL template: ``postgresql://`` /
``postgres://`` through psycopg2, ``mysql://`` / ``mariadb://`` through PyMySQL,
``sqlite:///path`` through sqlite3. It caches one connection per (process, thread, URL) with a
health check on reuse, runs the statement under the attempt's timeout (PostgreSQL
``statement_timeout``, MariaDB ``max_statement_time``, MySQL ``max_execution_time``, which
MySQL applies to SELECTs only), turns rows into JSON-ready dicts, and classifies failures:
cannot connect or connection lost -> ``connection``; statement timeout or a locked SQLite
file -> ``timeout``; a deadlock -> ``conflict`` (all retryable); anything the database
rejected -> ``error`` (not retryable).

A server-side timeout needs a server that answers. One that accepts the connection and then
says nothing (hung, or behind a proxy that black-holes packets) would hold the worker in a
socket read, so the client bounds every wait too: the health check, connecting and the
statement all end by the attempt's timeout plus ``CLIENT_GRACE_SECONDS`` (time for the
server to report its own timeout first). Past it the connection is closed and the attempt
fails with ``timeout``. Messages name the connection, or the database by host
and name (or SQLite path), never the URL, which may carry a password.

The SQL text is never templated; values reach it only as parameters bound by the driver,
written ``%(name)s`` (the style psycopg2 and PyMySQL share, translated for SQLite).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
import select
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import pymysql

from engine import connections
from engine.errors import InstructionError
from engine.forksafe import fork_safe_local
from engine.instructions import ExecContext, instruction_error
from engine.language.model import DbSpec

MAX_ROWS = 10_000
# How long past the attempt's timeout the client waits for the server: a server-side statement
# timeout is reported within milliseconds on a working link, and when it is reported the
# connection lives on; a second covers a loaded server without holding a worker much longer.
CLIENT_GRACE_SECONDS = 1.0
FETCH_MODES = frozenset({"none", "one", "all"})

_local = fork_safe_local()


class DbExecutor:
    kind = "db"
    side_effects = True
    spec_type = DbSpec

    def execute(self, spec: DbSpec, ctx: ExecContext) -> Any:
        """Run ``spec.query`` once with ``spec.params`` bound, and commit.

        Returns:
            fetch ``none`` (or a statement that returns no rows): ``{"rowcount": n}``;
            ``one``: the first row as a dict, or ``None``; ``all``: a list of row dicts (at
            most ``MAX_ROWS``).

        Raises:
            InstructionError: see the module docstring. More than ``MAX_ROWS`` rows is an
                ``error`` and the transaction is rolled back.
        """
        if spec.fetch not in FETCH_MODES:
            raise InstructionError(f"db: fetch must be one of none, one, all; got {spec.fetch!r}")
        params = ctx.render(dict(spec.params))
        url, label = _where(spec, ctx)
        deadline = time.monotonic() + ctx.timeout + CLIENT_GRACE_SECONDS
        database = _database_for(url, label, deadline)
        with database.errors(ctx.timeout):
            return database.run(spec.query, params, spec.fetch, ctx.timeout, deadline)


def describe(url: str) -> str:
    """The database a URL names, for messages: ``postgresql host:port/name`` or the path."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return f"sqlite {_sqlite_path(url)}"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme} {parts.hostname or 'localhost'}{port}{parts.path or '/'}"


def _where(spec: DbSpec, ctx: ExecContext) -> tuple[str, str]:
    """``(url, label)``: the URL to open and how messages name it."""
    if spec.connection is not None:
        url = connections.url_of(spec.connection)
        connections.check_serves(spec.connection, url, *connections.DATABASES)
        return url, f"connection '{spec.connection}'"
    url = str(ctx.render(spec.url))
    return url, describe(url)


def _database_for(url: str, label: str, deadline: float) -> _Database:
    scheme = urlsplit(url).scheme
    if scheme not in _DRIVERS:
        raise InstructionError(
            f"db: unsupported database URL scheme {scheme!r} "
            f"(supported: {', '.join(sorted(_DRIVERS))})"
        )
    cache = _connections()
    database = cache.get(url)
    if database is None or not database.healthy(deadline):
        if database is not None:
            database.close()
        database = _DRIVERS[scheme](url, label)
        cache[url] = database
    database.name = label  # one URL, named by a connection in one task and not in another
    return database


def _connections() -> dict[str, _Database]:
    # Per thread, and dropped in a forked child (engine.forksafe): a connection inherited
    # across fork shares its socket with the parent, and two processes on one PostgreSQL
    # connection corrupt the protocol.
    if not hasattr(_local, "cache"):
        _local.cache = {}
    return _local.cache


class _Database:
    """One lazily opened connection; subclasses know their driver."""

    def __init__(self, url: str, label: str):
        self.url = url
        self.name = label
        self.conn: Any = None

    def healthy(self, deadline: float) -> bool:
        """Cheap round trip on a cached connection, by ``deadline`` (``time.monotonic()``);
        ``False`` means reconnect."""
        if self.conn is None:
            return True
        try:
            self._ping(deadline)
        except Exception:  # any failure of the ping means this connection is unusable
            return False
        return True

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken connection may fail; we are discarding it
                pass

    @contextmanager
    def errors(self, timeout: float) -> Iterator[None]:
        """Turn a driver's failure into an ``InstructionError``; drop a connection that is
        lost, or that a silent server left in the middle of a conversation."""
        try:
            yield
        except InstructionError:
            raise
        except Exception as exc:
            silent = _no_answer(exc)
            error = self._silent(timeout) if silent else self._classify(exc)
            if silent or error.error_class == "connection":
                self.close()
                _connections().pop(self.url, None)
            raise error from exc

    def _silent(self, timeout: float) -> InstructionError:
        return instruction_error(
            f"db {self.name}: no answer from the database within the instruction's timeout "
            f"({timeout:g}s, plus {CLIENT_GRACE_SECONDS:g}s for the server to report its own); "
            "the connection was closed",
            "timeout",
        )

    def _fail(self, error_class: str, what: str, exc: Exception) -> InstructionError:
        detail = connections.scrub(str(exc), self.url, self.name) or type(exc).__name__
        return instruction_error(f"db {self.name}: {what}: {detail}", error_class)

    def run(self, query: str, params: dict, fetch: str, timeout: float, deadline: float) -> Any:
        raise NotImplementedError

    def _ping(self, deadline: float) -> None:
        raise NotImplementedError

    def _classify(self, exc: Exception) -> InstructionError:
        raise NotImplementedError


class _Postgres(_Database):
    """PostgreSQL through psycopg2, on an asynchronous connection.

    libpq has no read timeout: a blocking connection waits in ``recv`` for as long as a
    silent server keeps the socket open (``connect_timeout`` covers connecting only, in
    whole seconds; TCP keepalives and ``tcp_user_timeout`` only notice a peer whose kernel
    stops acknowledging, not a hung server process; ``conn.cancel()`` from a timer needs the
    same server to answer a second connection). An asynchronous connection lets us wait on
    its socket ourselves, with ``poll()`` and a deadline, for connecting, the health check
    and every statement: one mechanism, no thread, no global wait callback (which would
    change Django's own connections). Such a connection is in autocommit mode, so the
    transaction is ours: BEGIN, the statement, COMMIT (or ROLLBACK).
    """

    def _connect(self, deadline: float) -> Any:
        if self.conn is None:
            conn = psycopg2.connect(self.url, async_=1)
            try:
                _pg_wait(conn, deadline)
            except Exception:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def _ping(self, deadline: float) -> None:
        if self.conn.closed:
            raise psycopg2.InterfaceError("connection already closed")
        with self.conn.cursor() as cur:
            _pg_execute(cur, "SELECT 1", None, deadline)

    def run(self, query: str, params: dict, fetch: str, timeout: float, deadline: float) -> Any:
        conn = self._connect(deadline)
        bound = {k: _pg_param(v) for k, v in params.items()}
        with conn.cursor() as cur:
            _pg_execute(cur, "BEGIN", None, deadline)
            try:
                _pg_execute(cur, "SET LOCAL statement_timeout = %s",
                            (max(1, round(timeout * 1000)),), deadline)
                _pg_execute(cur, query, bound, deadline)
                result = _fetch(cur, fetch)
            except Exception as exc:
                if not _no_answer(exc) and not conn.closed:
                    with suppress(psycopg2.Error):  # the statement's own error is the one to tell
                        _pg_execute(cur, "ROLLBACK", None, deadline)
                raise
            _pg_execute(cur, "COMMIT", None, deadline)
        return result

    def _classify(self, exc: Exception) -> InstructionError:
        if isinstance(exc, psycopg2.errors.QueryCanceled):
            return self._fail("timeout", "statement timed out", exc)
        if self.conn is None and "authentication failed" in str(exc):
            return self._fail("error", "the database refused the credentials", exc)
        lost = self.conn is None or self.conn.closed
        if isinstance(exc, psycopg2.InterfaceError | psycopg2.OperationalError) and lost:
            return self._fail("connection", "cannot reach the database", exc)
        return self._fail("error", "statement failed", exc)


class _Sqlite(_Database):
    def _connect(self, timeout: float) -> Any:
        if self.conn is None:
            # Autocommit mode so that BEGIN/COMMIT below are ours and cover DDL too.
            self.conn = sqlite3.connect(
                _sqlite_path(self.url), timeout=timeout, isolation_level=None
            )
        return self.conn

    def _ping(self, deadline: float) -> None:
        self.conn.execute("SELECT 1").close()

    def run(self, query: str, params: dict, fetch: str, timeout: float, deadline: float) -> Any:
        conn = self._connect(timeout)
        bound = {k: _sqlite_param(v) for k, v in params.items()}
        conn.execute("BEGIN")
        try:
            result = _fetch(conn.execute(_to_sqlite_placeholders(query), bound), fetch)
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:  # the statement or the fetch failed
                conn.execute("ROLLBACK")
        return result

    def _classify(self, exc: Exception) -> InstructionError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
            return self._fail("connection", "cannot open the database", exc)
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return self._fail("timeout", "the database stayed locked", exc)
        return self._fail("error", "statement failed", exc)


class _Mysql(_Database):
    """MySQL and MariaDB through PyMySQL (pure Python: nothing to compile, one wheel)."""

    # Server error numbers (mysqld_error.h, errmsg.h).
    _TIMEOUTS = frozenset({1969, 3024, 1205})  # max_statement_time, max_execution_time, lock wait
    _CONFLICTS = frozenset({1213})  # deadlock: the transaction was rolled back, try again
    _REFUSED = frozenset({1044, 1045, 1698})  # access denied
    _LOST = frozenset({2002, 2003, 2006, 2013, 2055})  # cannot connect, gone away, lost

    mariadb = False

    def _connect(self, deadline: float) -> Any:
        if self.conn is None:
            parts = urlsplit(self.url)
            wait = _remaining(deadline)
            self.conn = pymysql.connect(
                host=parts.hostname or "localhost", port=parts.port or 3306,
                user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                database=unquote(parts.path.lstrip("/")) or None, charset="utf8mb4",
                connect_timeout=wait, read_timeout=wait, write_timeout=wait, autocommit=False)
            self.mariadb = "mariadb" in self.conn.get_server_info().lower()
        return self.conn

    def _bound(self, deadline: float) -> None:
        # PyMySQL applies its read and write timeouts to each socket operation and reads
        # them from these attributes before each one, so a cached connection takes the
        # bound of the attempt at hand (its timeout plus the grace) without reconnecting.
        wait = _remaining(deadline)
        self.conn._read_timeout = self.conn._write_timeout = wait

    def _ping(self, deadline: float) -> None:
        self._bound(deadline)
        self.conn.ping(reconnect=False)

    def run(self, query: str, params: dict, fetch: str, timeout: float, deadline: float) -> Any:
        conn = self._connect(deadline)
        self._bound(deadline)
        bound = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
        conn.begin()
        committed = False
        try:
            with conn.cursor() as cur:
                cur.execute(*self._timeout_statement(timeout))
                cur.execute(query, bound)  # a dict, even empty: %% always means %
                result = _fetch(cur, fetch)
            conn.commit()
            committed = True
        finally:
            if not committed and conn.open:
                with suppress(pymysql.Error):  # the statement's own error is the one to tell
                    conn.rollback()
        return result

    def _timeout_statement(self, timeout: float) -> tuple[str, tuple]:
        if self.mariadb:
            return "SET SESSION max_statement_time = %s", (max(0.001, timeout),)
        return "SET SESSION max_execution_time = %s", (max(1, round(timeout * 1000)),)

    def _classify(self, exc: Exception) -> InstructionError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in self._TIMEOUTS:
            return self._fail("timeout", "statement timed out", exc)
        if code in self._CONFLICTS:
            return self._fail("conflict", "deadlock, the transaction was rolled back", exc)
        if code in self._REFUSED:
            return self._fail("error", "the database refused the credentials", exc)
        if code in self._LOST or self.conn is None or not self.conn.open:
            return self._fail("connection", "cannot reach the database", exc)
        return self._fail("error", "statement failed", exc)


_DRIVERS: dict[str, Callable[[str, str], _Database]] = {
    "postgresql": _Postgres,
    "postgres": _Postgres,
    "mysql": _Mysql,
    "mariadb": _Mysql,
    "sqlite": _Sqlite,
}


def _sqlite_path(url: str) -> str:
    # sqlite:///relative.db, sqlite:////absolute/path.db, sqlite:///:memory: (SQLAlchemy's form)
    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    return path or ":memory:"


_PYFORMAT = re.compile(r"%%|%\((\w+)\)s")


def _to_sqlite_placeholders(query: str) -> str:
    return _PYFORMAT.sub(lambda m: f":{m.group(1)}" if m.group(1) else "%", query)


class _NoAnswer(TimeoutError):
    """The server did not answer by the client's deadline."""


def _remaining(deadline: float) -> float:
    """Seconds left until ``deadline``; never zero, which drivers read as "no timeout"."""
    return max(0.001, deadline - time.monotonic())


def _no_answer(exc: BaseException) -> bool:
    """Whether ``exc`` is a client-side wait that ran out (ours, or a driver's socket
    timeout, which PyMySQL wraps in an ``OperationalError``)."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _pg_execute(cur: Any, query: str, params: Any, deadline: float) -> None:
    cur.execute(query, params)
    _pg_wait(cur.connection, deadline)


def _pg_wait(conn: Any, deadline: float) -> None:
    """Pump an asynchronous psycopg2 connection until its operation is done, waiting on its
    socket no later than ``deadline`` (``time.monotonic()``).

    ``select.poll`` rather than ``select.select``: a worker with many threads may hold
    descriptors past ``select``'s limit of 1024.

    Raises:
        _NoAnswer: the deadline passed.
        psycopg2.Error: the operation failed.
    """
    while (state := conn.poll()) != psycopg2.extensions.POLL_OK:
        if state == psycopg2.extensions.POLL_ERROR:
            raise psycopg2.OperationalError("the connection reported an error")
        events = select.POLLIN if state == psycopg2.extensions.POLL_READ else select.POLLOUT
        poller = select.poll()
        poller.register(conn.fileno(), events | select.POLLERR | select.POLLHUP)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise _NoAnswer()


def _pg_param(value: Any) -> Any:
    # psycopg2 sends lists as arrays but cannot adapt a dict: send mappings as JSON.
    return psycopg2.extras.Json(value) if isinstance(value, dict) else value


def _sqlite_param(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list | tuple) else value


def _fetch(cur: Any, fetch: str) -> Any:
    # A statement that returns no rows (INSERT without RETURNING, DDL) answers its rowcount
    # whatever fetch says: fetch defaults to "all", and failing a write after the fact for
    # want of rows would only punish the default.
    if fetch == "none" or cur.description is None:
        return {"rowcount": cur.rowcount}
    columns = [d[0] for d in cur.description]
    if fetch == "one":
        row = cur.fetchone()
        return None if row is None else _row(columns, row)
    rows = cur.fetchmany(MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise InstructionError(
            f"db: the statement returned more than {MAX_ROWS:,} rows; add a LIMIT or use "
            "fetch: one (the transaction was rolled back)"
        )
    return [_row(columns, row) for row in rows]


def _row(columns: list[str], row: tuple) -> dict[str, Any]:
    return {name: to_json(value) for name, value in zip(columns, row, strict=True)}


def to_json(value: Any) -> Any:
    """A database value as JSON data.

    Decimals become ints when whole, else floats (a predicate compares numbers; 15
    significant digits survive), times ISO 8601 strings, intervals seconds, UUIDs strings,
    bytes base64.
    """
    converter = _CONVERTERS.get(type(value))
    if converter is not None:
        return converter(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    decimal.Decimal: lambda v: int(v) if v == v.to_integral_value() else float(v),
    dt.datetime: lambda v: v.isoformat(),
    dt.date: lambda v: v.isoformat(),
    dt.time: lambda v: v.isoformat(),
    dt.timedelta: lambda v: v.total_seconds(),
    uuid.UUID: str,
    bytes: lambda v: base64.b64encode(v).decode("ascii"),
    memoryview: lambda v: base64.b64encode(bytes(v)).decode("ascii"),
}


EXECUTOR = DbExecutor()
