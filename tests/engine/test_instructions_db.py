"""The db instruction against SQLite (always), PostgreSQL at 127.0.0.1:5432 and MariaDB at
127.0.0.1:3306 (when up; REQUIRE_SERVICES=1 fails without them)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from engine.errors import InstructionError
from engine.instructions import ExecContext, db
from engine.language.model import DbSpec
from tests.engine.forking import in_child
from tests.proxy import Proxy
from tests.services import MARIADB_URL, require_mariadb, require_service

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_URL = MARIADB_URL


def _pg_check() -> None:
    psycopg2.connect(PG_URL, connect_timeout=2).close()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def database(request, tmp_path) -> Iterator[tuple[str, str]]:
    """``(url, table)``: a database and a fresh empty table ``(id integer, name text)``."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    elif request.param == "mysql":
        require_mariadb()
        url = MYSQL_URL
    else:
        require_service("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)", _pg_check)
        url = PG_URL
    table = f"t_{uuid.uuid4().hex[:12]}"
    run(url, f"CREATE TABLE {table} (id integer, name text)", fetch="none")
    yield url, table
    run(url, f"DROP TABLE {table}", fetch="none")


def run(url: str, query: str, fetch: str = "all", timeout: float = 5.0, **params):
    spec = DbSpec(url=url, query=query, params=tuple(params.items()), fetch=fetch)
    ctx = ExecContext(render=lambda v: v, timeout=timeout, idempotency_key="k", attempt=1)
    return db.EXECUTOR.execute(spec, ctx)


def run_on(connection: str, query: str) -> InstructionError:
    """The error of ``query`` on the named connection (it must fail)."""
    spec = DbSpec(connection=connection, query=query)
    ctx = ExecContext(render=lambda v: v, timeout=5, idempotency_key="k", attempt=1)
    with pytest.raises(InstructionError) as info:
        db.EXECUTOR.execute(spec, ctx)
    return info.value


def failure(url: str, query: str, **kwargs) -> InstructionError:
    with pytest.raises(InstructionError) as info:
        run(url, query, **kwargs)
    return info.value


def test_fetch_none_one_all(database):
    url, t = database
    insert = f"INSERT INTO {t} (id, name) VALUES (%(id)s, %(name)s)"
    assert run(url, insert, fetch="none", id=1, name="a") == {"rowcount": 1}
    run(url, insert, fetch="none", id=2, name="b%")
    rows = run(url, f"SELECT id, name FROM {t} ORDER BY id")
    assert rows == [{"id": 1, "name": "a"}, {"id": 2, "name": "b%"}]
    one = f"SELECT name FROM {t} WHERE id = %(id)s"
    assert run(url, one, fetch="one", id=2) == {"name": "b%"}
    assert run(url, one, fetch="one", id=9) is None
    assert run(url, f"SELECT id FROM {t} WHERE id > 5") == []


def test_each_statement_commits(database):
    url, t = database
    run(url, f"INSERT INTO {t} VALUES (1, 'x')", fetch="none")
    seen = []
    thread = threading.Thread(
        target=lambda: seen.append(run(url, f"SELECT count(*) AS n FROM {t}"))
    )
    thread.start()
    thread.join(timeout=10)
    assert seen == [[{"n": 1}]]  # another connection (another thread) sees the row


def test_statement_without_rows_answers_rowcount_whatever_fetch_says(database):
    url, t = database
    assert run(url, f"UPDATE {t} SET name = 'z'") == {"rowcount": 0}


def test_percent_literal_survives(database):
    url, t = database
    rows = run(url, "SELECT 'a%%b' AS v, %(x)s AS x", x="y")
    assert rows == [{"v": "a%b", "x": "y"}]


def test_sql_error_is_not_retryable_and_rolls_back(database):
    url, t = database
    error = failure(url, f"SELECT nope FROM {t}")
    assert (error.error_class, error.retryable) == ("error", False)
    assert "statement failed" in str(error)
    # The cached connection is still usable after the failed transaction.
    assert run(url, f"SELECT count(*) AS n FROM {t}") == [{"n": 0}]


def test_more_rows_than_the_cap_is_an_error(database, monkeypatch):
    url, t = database
    monkeypatch.setattr(db, "MAX_ROWS", 3)
    for i in range(4):
        run(url, f"INSERT INTO {t} VALUES (%(i)s, 'x')", fetch="none", i=i)
    error = failure(url, f"SELECT id FROM {t}")
    assert "more than 3 rows" in str(error) and "LIMIT" in str(error)
    assert len(run(url, f"SELECT id FROM {t} LIMIT 3")) == 3


def test_unknown_fetch_mode_is_an_error(database):
    url, t = database
    assert "fetch must be one of" in str(failure(url, "SELECT 1", fetch="many"))


def test_connection_is_cached_and_replaced_when_it_dies(database):
    url, t = database
    run(url, "SELECT 1 AS one")
    cached = db._connections()[url]
    cached.conn.close()  # as if the server had dropped it
    assert run(url, "SELECT 1 AS one") == [{"one": 1}]
    assert db._connections()[url] is not cached


def test_sqlite_params_json_encode_containers_and_values_come_back_as_json(tmp_path):
    url = f"sqlite:///{tmp_path / 'j.db'}"
    row = run(url, "SELECT %(d)s AS d, %(b)s AS b", fetch="one", d={"a": [1]}, b=b"\x00\x01")
    assert json.loads(row["d"]) == {"a": [1]}
    assert row["b"] == "AAE="


def test_sqlite_file_that_cannot_open_is_a_connection_error(tmp_path):
    error = failure(f"sqlite:///{tmp_path}/missing-dir/x.db", "SELECT 1")
    assert (error.error_class, error.retryable) == ("connection", True)
    assert "missing-dir" in str(error)


def test_postgres_values_are_json_ready():
    require_service("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)", _pg_check)
    row = run(
        PG_URL,
        "SELECT 1.50::numeric AS d, 2::numeric AS w, '2024-01-02T03:04:05Z'::timestamptz AS t, "
        "'1 minute'::interval AS i, %(u)s::uuid AS u, %(j)s::jsonb AS j, ARRAY[1,2] AS a",
        fetch="one",
        u=str(uuid.UUID(int=1)),
        j={"k": [1]},
    )
    assert row == {
        "d": 1.5,
        "w": 2,
        "t": "2024-01-02T03:04:05+00:00",
        "i": 60.0,
        "u": "00000000-0000-0000-0000-000000000001",
        "j": {"k": [1]},
        "a": [1, 2],
    }


def test_postgres_statement_timeout_is_a_retryable_timeout():
    require_service("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)", _pg_check)
    error = failure(PG_URL, "SELECT pg_sleep(5)", timeout=0.1)
    assert (error.error_class, error.retryable) == ("timeout", True)


def test_postgres_unreachable_is_a_connection_error_without_the_password(closed_port):
    url = f"postgresql://postgres:hunter2@127.0.0.1:{closed_port}/appdb"
    error = failure(url, "SELECT 1", timeout=1)
    assert (error.error_class, error.retryable) == ("connection", True)
    assert f"127.0.0.1:{closed_port}/appdb" in str(error)
    assert "hunter2" not in str(error)


def test_unsupported_scheme_is_an_error():
    assert "unsupported database URL scheme 'oracle'" in str(failure("oracle://h/db", "SELECT 1"))


def test_mariadb_values_are_json_ready():
    require_mariadb()
    row = run(
        MYSQL_URL,
        "SELECT CAST(1.50 AS DECIMAL(5,2)) AS d, CAST(2 AS DECIMAL) AS w, "
        "TIMESTAMP '2024-01-02 03:04:05' AS t, DATE '2024-01-02' AS day, %(j)s AS j, "
        "%(n)s AS n, %(s)s AS s",
        fetch="one", j={"k": [1]}, n=None, s="it's; DROP TABLE x -- ",
    )
    assert row == {"d": 1.5, "w": 2, "t": "2024-01-02T03:04:05", "day": "2024-01-02",
                   "j": '{"k": [1]}', "n": None, "s": "it's; DROP TABLE x -- "}


def test_mariadb_statement_timeout_is_a_retryable_timeout():
    require_mariadb()
    error = failure(MYSQL_URL, "SELECT SLEEP(5) AS s", timeout=0.2)
    assert (error.error_class, error.retryable) == ("timeout", True)
    assert "max_statement_time" in str(error)
    assert run(MYSQL_URL, "SELECT 1 AS one", timeout=5) == [{"one": 1}]  # the session lives on


def test_mariadb_sql_error_names_the_connection_and_rolls_back(monkeypatch):
    require_mariadb()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", MYSQL_URL)
    table = f"t_{uuid.uuid4().hex[:12]}"
    run(MYSQL_URL, f"CREATE TABLE {table} (id integer PRIMARY KEY)", fetch="none")
    try:
        error = run_on("shop", f"INSERT INTO {table} VALUES (1), (1)")
        assert str(error).startswith("db connection 'shop': statement failed: (1062")
        assert not error.retryable
        assert run(MYSQL_URL, f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]
    finally:
        run(MYSQL_URL, f"DROP TABLE {table}", fetch="none")


def test_mariadb_refused_credentials_are_final_without_the_password(monkeypatch):
    require_mariadb()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", "mysql://nobody:W0rong-pw@127.0.0.1/test")
    error = run_on("shop", "SELECT 1")
    assert "db connection 'shop': the database refused the credentials" in str(error)
    assert not error.retryable and "W0rong-pw" not in str(error)


def test_mariadb_unreachable_is_a_connection_error(closed_port):
    error = failure(f"mysql://root:hunter2@127.0.0.1:{closed_port}/test", "SELECT 1", timeout=1)
    assert (error.error_class, error.retryable) == ("connection", True)
    assert "hunter2" not in str(error)


def test_a_db_connection_of_another_scheme_is_refused(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", "grpc://127.0.0.1:1")
    assert "which does not serve a database (db)" in str(run_on("shop", "SELECT 1"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (decimal.Decimal("2.25"), 2.25),
        (decimal.Decimal("10"), 10),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (dt.time(3, 4), "03:04:00"),
        (memoryview(b"ab"), "YWI="),
        ((1, decimal.Decimal("1.5")), [1, 1.5]),
    ],
)
def test_to_json_converts_database_types(value, expected):
    assert db.to_json(value) == expected


def test_a_forked_child_does_not_reuse_the_parents_connections(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    run(url, "SELECT 1")
    assert url in db._connections()
    assert in_child(lambda: db._connections() == {}) == 0
    assert url in db._connections()


# --- A far end that accepts and then says nothing -------------------------------------------
#
# The server-side statement timeout cannot fire on a server that does not answer; the client
# must give up by itself: the attempt's timeout plus db.CLIENT_GRACE_SECONDS, and a little
# for a loaded machine.
SILENT_TIMEOUT = 0.5
SILENT_BOUND = SILENT_TIMEOUT + db.CLIENT_GRACE_SECONDS + 0.75


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port whose listener completes TCP handshakes (the kernel does, from the
    backlog) and never reads or writes: a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _pg_port_check() -> None:
    require_service("PostgreSQL at 127.0.0.1:5432 (user postgres, database test)", _pg_check)


SILENT_SERVERS = {
    "postgresql": ("postgresql://postgres@127.0.0.1:{port}/test", 5432, _pg_port_check),
    "mysql": ("mysql://root@127.0.0.1:{port}/test", 3306, require_mariadb),
}


def _silent_failure(monkeypatch, url: str, query: str) -> tuple[InstructionError, float]:
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SLOW", url)
    spec = DbSpec(connection="slow", query=query)
    ctx = ExecContext(render=lambda v: v, timeout=SILENT_TIMEOUT, idempotency_key="k")
    t0 = time.monotonic()
    with pytest.raises(InstructionError) as info:
        db.EXECUTOR.execute(spec, ctx)
    return info.value, time.monotonic() - t0


def _assert_silent(error: InstructionError, elapsed: float) -> None:
    assert elapsed < SILENT_BOUND
    assert (error.error_class, error.retryable) == ("timeout", True)
    assert str(error).startswith("db connection 'slow': no answer from the database")
    assert f"timeout ({SILENT_TIMEOUT:g}s" in str(error)


@pytest.mark.parametrize("driver", sorted(SILENT_SERVERS))
def test_a_silent_server_fails_connecting_with_a_timeout(driver, silent_listener, monkeypatch):
    template, _, _ = SILENT_SERVERS[driver]
    url = template.format(port=silent_listener)
    _assert_silent(*_silent_failure(monkeypatch, url, "SELECT 1"))
    assert url not in db._connections()


@pytest.mark.parametrize("driver", sorted(SILENT_SERVERS))
def test_a_server_silent_mid_statement_fails_with_a_timeout(driver, monkeypatch):
    template, upstream, require = SILENT_SERVERS[driver]
    require()
    proxy = Proxy(upstream)
    proxy.start()
    try:
        url = template.format(port=proxy.port)
        monkeypatch.setenv("ASYNC_STATES_CONNECTION_SLOW", url)
        assert run_on_ok("slow", "SELECT 1 AS one") == [{"one": 1}]  # connected and cached
        # The health check on the cached connection passes; the statement's answer is lost.
        threading.Timer(0.15, proxy.silent.set).start()
        sleep = "pg_sleep" if driver == "postgresql" else "SLEEP"
        error, elapsed = _silent_failure(monkeypatch, url, f"SELECT {sleep}(0.3) AS s")
        _assert_silent(error, elapsed)
        assert url not in db._connections()  # the half-spoken connection was dropped
    finally:
        proxy.stop()


def test_a_cached_connection_whose_server_went_silent_fails_with_a_timeout(monkeypatch):
    _pg_port_check()
    proxy = Proxy(5432)
    proxy.start()
    try:
        url = SILENT_SERVERS["postgresql"][0].format(port=proxy.port)
        monkeypatch.setenv("ASYNC_STATES_CONNECTION_SLOW", url)
        run_on_ok("slow", "SELECT 1")
        proxy.silent.set()  # the health check, then the new connection, get no answer
        _assert_silent(*_silent_failure(monkeypatch, url, "SELECT 1"))
    finally:
        proxy.stop()


def run_on_ok(connection: str, query: str):
    spec = DbSpec(connection=connection, query=query)
    ctx = ExecContext(render=lambda v: v, timeout=5, idempotency_key="k")
    return db.EXECUTOR.execute(spec, ctx)
