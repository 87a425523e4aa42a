"""``loadtasks --check`` on named connections: checked against the loading environment."""

from __future__ import annotations

import pytest

from tests.taskapp.test_loadtasks_corpus import _check

TASK = """\
name: publishes
version: 1
start_state: a
states:
  a:
    instructions:
      - message: {broker: amqp, connection: orders, to: q}
    transitions: [{to: done}]
  done: {final: succeeded}
"""


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "publishes.yaml"
    path.write_text(TASK)
    return path


@pytest.mark.django_db
def test_a_connection_of_another_scheme_is_an_error_at_its_line(monkeypatch, task_file):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_ORDERS", "mqtt://u:l0ng-password@h:1883")
    output, status = _check(str(task_file))
    assert status == 1
    assert (
        f"{task_file}:7:45: error: connection 'orders' is a mqtt URL, which does not serve the "
        "amqp broker" in output
    )
    assert "l0ng-password" not in output


@pytest.mark.django_db
def test_an_unconfigured_connection_is_a_warning_and_the_check_passes(monkeypatch, task_file):
    monkeypatch.delenv("ASYNC_STATES_CONNECTION_ORDERS", raising=False)
    output, status = _check(str(task_file))
    assert status == 0, output
    assert f"{task_file}:7:45: warning: connection 'orders' is not configured here" in output
    assert "1 ok, 0 with errors, 1 warnings" in output


@pytest.mark.django_db
def test_a_configured_connection_passes_cleanly(monkeypatch, task_file):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_ORDERS", "amqp://u:p@h:5672/v")
    output, status = _check(str(task_file))
    assert (status, "0 warnings" in output) == (0, True), output


REACH = """\
name: reaches
version: 1
start_state: a
states:
  a:
    instructions:
      - rpc: {protocol: grpc, connection: stock, method: shop.Stock/Reserve}
      - db: {connection: shop, query: "select 1"}
    transitions:
      - to: done
        poll:
          db: {connection: shop, query: "select 1"}
          every: 1s
          until: "true"
  done: {final: succeeded}
"""


@pytest.mark.django_db
def test_grpc_and_db_connections_of_the_wrong_scheme_are_errors_at_their_lines(
    monkeypatch, tmp_path
):
    path = tmp_path / "reaches.yaml"
    path.write_text(REACH)
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_STOCK", "mysql://root:l0ng-password@h/db")
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", "grpc://h:50051")
    output, status = _check(str(path))
    assert status == 1
    assert (
        f"{path}:7:43: error: connection 'stock' is a mysql URL, which does not serve gRPC; "
        "name a connection whose URL scheme is grpc or grpcs" in output
    )
    assert (
        f"{path}:8:26: error: connection 'shop' is a grpc URL, which does not serve a database "
        "(db); name a connection whose URL scheme is mariadb, mysql, postgres, postgresql or "
        "sqlite" in output
    )
    assert f"{path}:12:28: error: connection 'shop' is a grpc URL" in output
    assert "l0ng-password" not in output


@pytest.mark.django_db
def test_grpc_and_mysql_connections_of_their_schemes_pass(monkeypatch, tmp_path):
    path = tmp_path / "reaches.yaml"
    path.write_text(REACH)
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_STOCK", "grpcs://stock.example:443")
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_SHOP", "mariadb://app:pw@h:3306/shop")
    output, status = _check(str(path))
    assert (status, "0 warnings" in output) == (0, True), output
