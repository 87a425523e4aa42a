"""The ``db`` instruction: one SQL statement with bound parameters, in its own transaction.

It owns reaching a database named by URL (``postgresql://``/``postgres://`` through psycopg2,
``sqlite:///path`` through sqlite3), caching one connection per (process, thread, URL) with a
health check on reuse, running the statement under the attempt's timeout, turning rows into
JSON-ready dicts, and classifying failures: cannot connect or connection lost ->
``connection``; statement timeout or a locked SQLite file -> ``timeout`` (both retryable);
anything the database rejected -> ``error`` (not retryable). Messages name the database by
host and name (or SQLite path), never by the URL, which may carry a password.

The SQL text is never templated; values reach it only as bound parameters written
``%(name)s`` (psycopg2's style, translated for SQLite).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import psycopg2.errors
import psycopg2.extras

from engine.errors import InstructionError
from engine.forksafe import fork_safe_local
from engine.instructions import ExecContext, instruction_error
from engine.language.model import DbSpec

MAX_ROWS = 10_000
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
        url = str(ctx.render(spec.url))
        params = ctx.render(dict(spec.params))
        database = _database_for(url)
        with database.errors():
            return database.run(spec.query, params, spec.fetch, ctx.timeout)


def describe(url: str) -> str:
    """The database a URL names, for messages: ``postgresql host:port/name`` or the path."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return f"sqlite {_sqlite_path(url)}"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme} {parts.hostname or 'localhost'}{port}{parts.path or '/'}"


def _database_for(url: str) -> _Database:
    scheme = urlsplit(url).scheme
    if scheme not in _DRIVERS:
        raise InstructionError(
            f"db: unsupported database URL scheme {scheme!r} "
            f"(supported: {', '.join(sorted(_DRIVERS))})"
        )
    cache = _connections()
    database = cache.get(url)
    if database is None or not database.healthy():
        if database is not None:
            database.close()
        database = _DRIVERS[scheme](url)
        cache[url] = database
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

    def __init__(self, url: str):
        self.url = url
        self.name = describe(url)
        self.conn: Any = None

    def healthy(self) -> bool:
        """Cheap round trip on a cached connection; ``False`` means reconnect."""
        if self.conn is None:
            return True
        try:
            self._ping()
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
    def errors(self) -> Iterator[None]:
        try:
            yield
        except InstructionError:
            raise
        except Exception as exc:
            error = self._classify(exc)
            if error.error_class == "connection":
                self.close()
                _connections().pop(self.url, None)
            raise error from exc

    def _fail(self, error_class: str, what: str, exc: Exception) -> InstructionError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return instruction_error(f"db {self.name}: {what}: {detail}", error_class)

    def run(self, query: str, params: dict, fetch: str, timeout: float) -> Any:
        raise NotImplementedError

    def _ping(self) -> None:
        raise NotImplementedError

    def _classify(self, exc: Exception) -> InstructionError:
        raise NotImplementedError


class _Postgres(_Database):
    def _connect(self, timeout: float) -> Any:
        if self.conn is None:
            # libpq wants whole seconds, and 0 means wait forever.
            self.conn = psycopg2.connect(self.url, connect_timeout=max(1, round(timeout)))
        return self.conn

    def _ping(self) -> None:
        if self.conn.closed:
            raise psycopg2.InterfaceError("connection already closed")
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1")
        self.conn.rollback()

    def run(self, query: str, params: dict, fetch: str, timeout: float) -> Any:
        conn = self._connect(timeout)
        bound = {k: _pg_param(v) for k, v in params.items()}
        with conn, conn.cursor() as cur:  # `with conn`: commit on success, else roll back
            cur.execute("SET LOCAL statement_timeout = %s", (max(1, round(timeout * 1000)),))
            cur.execute(query, bound)
            return _fetch(cur, fetch)

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

    def _ping(self) -> None:
        self.conn.execute("SELECT 1").close()

    def run(self, query: str, params: dict, fetch: str, timeout: float) -> Any:
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


_DRIVERS: dict[str, Callable[[str], _Database]] = {
    "postgresql": _Postgres,
    "postgres": _Postgres,
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
