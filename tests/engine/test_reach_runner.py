"""gRPC calls, MariaDB statements and polls of both, run by the runner (in-memory store, fake
clock) against the real gRPC test server and the real MariaDB: retries, final failures and
the one aggregated poll record."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from engine.instructions.rpc import grpc_unary
from engine.runner import EngineSettings, Runner
from engine.runs import RunStatus
from tests.engine.fakes import new_run
from tests.engine.test_instructions_db import run as sql
from tests.grpcserver import SERVICE, StockServer, free_port
from tests.services import MARIADB_URL, require_mariadb

POOL = ThreadPoolExecutor(max_workers=4)


@pytest.fixture
def runner(store, clock):
    return Runner(store=store, clock=clock, pool=POOL,
                  settings=EngineSettings(inline_retry_max_seconds=1.0))


@pytest.fixture
def stock(monkeypatch):
    server = StockServer(free_port()).start()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_STOCK", f"grpc://{server.target}")
    yield server
    server.stop()
    grpc_unary._CHANNELS.close_all()


@pytest.fixture
def jobs(monkeypatch):
    """A MariaDB table ``jobs (id, status)`` behind the connection ``shop``."""
    require_mariadb()
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", MARIADB_URL)
    table = f"jobs_{uuid.uuid4().hex[:10]}"
    sql(MARIADB_URL, f"CREATE TABLE {table} (id varchar(20) PRIMARY KEY, status text)",
        fetch="none")
    yield table
    sql(MARIADB_URL, f"DROP TABLE {table}", fetch="none")


RESERVE = f"""
name: reserve
version: 1
start_state: reserving
states:
  reserving:
    instructions:
      - name: reserve
        rpc:
          protocol: grpc
          connection: stock
          method: {SERVICE}/Reserve
          request: {{sku: "{{{{ input.sku }}}}", quantity: 2}}
        timeout: 5s
        retry: {{max_attempts: 3, initial_delay: 100ms, jitter: false}}
        save_as: reservation
    transitions: [{{to: done}}]
  done: {{final: succeeded}}
"""


def test_unavailable_is_retried_then_the_call_succeeds(runner, store, clock, stock):
    stock.unavailable_left = 1
    run = new_run(RESERVE, clock.now(), input={"sku": "A-1"})
    assert runner.advance(run).finished
    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.data["reservation"]["id"] == "r-A-1-2"
    assert run.data["reservation"]["idempotency_key"] == "run-1:1:reserve"
    assert [(a.attempt, a.ok, a.error_class) for a in store.attempts] == [
        (1, False, "connection"), (2, True, "")]
    assert "UNAVAILABLE: warming up" in store.attempts[0].error
    keys = {call["metadata"]["idempotency-key"] for call in stock.calls}
    assert keys == {"run-1:1:reserve"}  # the retry carries the same key


def test_a_final_status_fails_the_run_at_once_with_a_clear_error(runner, store, clock, stock):
    run = new_run(RESERVE, clock.now(), input={"sku": "missing"})
    assert runner.advance(run).finished
    assert run.status is RunStatus.FAILED
    assert run.error["message"] == (
        "instruction 'reserve' in state 'reserving' failed after 1 attempt(s): "
        f"rpc {SERVICE}/Reserve on connection 'stock': NOT_FOUND: no sku 'missing'")
    assert [(a.ok, a.error_class) for a in store.attempts] == [(False, "status")]


def poll_task(check: str, until: str) -> str:
    return f"""
name: polled
version: 1
start_state: waiting
states:
  waiting:
    transitions:
      - to: ready
        poll:
{check}
          every: 10s
          until: "{until}"
          max_attempts: 5
          save_as: seen
  ready: {{final: succeeded}}
"""


def test_a_poll_of_a_mariadb_query_until_the_row_is_done(runner, store, clock, jobs):
    sql(MARIADB_URL, f"INSERT INTO {jobs} VALUES ('j1', 'pending')", fetch="none")
    check = (f"          db: {{connection: shop, query: \"select status from {jobs} "
             "where id = %(id)s\", params: {id: j1}, fetch: one}")
    run = new_run(poll_task(check, "result and result.status == 'done'"), clock.now())
    assert runner.advance(run).wake_at == clock.now() + timedelta(seconds=10)
    sql(MARIADB_URL, f"UPDATE {jobs} SET status = 'done'", fetch="none")
    clock.advance(10)
    assert runner.advance(run).finished
    assert (run.status, run.data["seen"]) == (RunStatus.SUCCEEDED, {"status": "done"})
    (record,) = store.polls.values()
    assert (record.attempts, record.outcome) == (2, "fulfilled")
    assert store.attempts == []  # a poll's attempts are aggregated, never one row each


def test_a_poll_of_a_grpc_call_until_the_level_is_high_enough(runner, store, clock, stock):
    check = (f"          rpc: {{protocol: grpc, connection: stock, method: {SERVICE}/Level, "
             "request: {sku: A-1}}")
    run = new_run(poll_task(check, "result.on_hand >= 5"), clock.now())
    runner.advance(run)
    stock.levels["A-1"] = 7
    clock.advance(10)
    assert runner.advance(run).finished
    assert run.data["seen"] == {"sku": "A-1", "on_hand": 7}
    (record,) = store.polls.values()
    assert (record.attempts, record.outcome, record.last_result) == (
        2, "fulfilled", {"sku": "A-1", "on_hand": 7})


def test_a_poll_attempt_that_errors_counts_and_the_poll_goes_on(runner, store, clock, stock):
    check = (f"          rpc: {{protocol: grpc, connection: stock, method: {SERVICE}/Reserve, "
             "request: {sku: missing}}")
    run = new_run(poll_task(check, "true"), clock.now())
    assert runner.advance(run).wake_at == clock.now() + timedelta(seconds=10)
    (record,) = store.polls.values()
    assert record.attempts == 1 and "NOT_FOUND" in record.last_error
    assert not run.status.finished


def test_a_poll_may_run_a_message_since_its_executor_answers_a_value():
    from engine.instructions import gives_result
    from engine.language import validate_text

    check = "          message: {broker: redis, url: \"redis://127.0.0.1:6379/0\", to: pings}"
    report = validate_text(poll_task(check, "result.receivers > 0"))
    assert report.ok, [str(p) for p in report.problems]
    assert gives_result("message") and not gives_result("set")
