"""gRPC, MariaDB and polls of both in the real cluster: the shipped ``stock_reservation`` task
against a gRPC server this test starts (reflection and health, on loopback) and the local
MariaDB, through named connections. The gRPC server is down when the run starts (its health
poll meets UNAVAILABLE) and its first Reserve answers UNAVAILABLE (retried, then succeeding);
a final status sends the run to its ``on_error`` state with a clear error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from taskapp import models
from taskapp.services import run_start
from tests.e2e.conftest import TOKEN, path_of, sql, wait_for
from tests.engine.test_docs_examples import yaml_examples

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def reach_cluster(reach, cluster):
    return cluster


def shipped_task(table: str) -> str:
    return (ROOT / "taskdefs" / "stock_reservation.yaml").read_text().replace(
        "reservations", table)


def wait_until(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not true after {timeout}s: {check}")


def test_the_shipped_stock_reservation_task_runs_through_a_grpc_outage(
    reach, reach_cluster, load
):
    server, table = reach
    load(shipped_task(table))
    run, _ = run_start(task="stock_reservation", input={"sku": "A-1", "quantity": 2})
    # The server is down: the health poll's attempts fail with UNAVAILABLE and go on.
    down = wait_until(lambda: models.PollRecord.objects.filter(
        run=run, last_error__contains="UNAVAILABLE").first())
    assert down.state == "waiting_for_inventory"
    server.unavailable_left = 1
    server.start()
    run = wait_for(run.pk, state="awaiting_pick", timeout=60)
    reserve = list(models.InstructionAttempt.objects.filter(run=run, instruction="reserve")
                   .order_by("attempt").values_list("attempt", "ok", "error_class"))
    assert reserve == [(1, False, "connection"), (2, True, "")]
    reservation = run.data["reservation"]
    assert reservation["id"] == "r-A-1-2" and reservation["quantity"] == 2
    key = reservation["idempotency_key"]
    assert key.startswith(f"{run.pk}:") and key.endswith(":reserve")
    assert {c["metadata"]["idempotency-key"] for c in server.calls} == {key}
    assert sql(f"SELECT sku, quantity, status FROM {table}") == [
        {"sku": "A-1", "quantity": 2, "status": "reserved"}]
    sql(f"UPDATE {table} SET status = 'picked' WHERE id = %(id)s", id=reservation["id"],
        fetch="none")
    run = wait_for(run.pk, timeout=60)
    assert (run.status, run.state) == ("succeeded", "picked"), run.error
    assert run.data["pick"] == {"status": "picked"}
    assert [to for _, to, _ in path_of(run)] == [
        "waiting_for_inventory", "reserving", "recording", "awaiting_pick", "picked"]
    polls = {p.state: p for p in models.PollRecord.objects.filter(run=run)}
    assert set(polls) == {"waiting_for_inventory", "awaiting_pick"}  # one record per poll
    assert polls["waiting_for_inventory"].attempts >= 2
    assert polls["waiting_for_inventory"].outcome == "fulfilled"
    assert polls["awaiting_pick"].last_result == {"status": "picked"}


def test_a_final_grpc_status_goes_to_on_error_with_a_clear_error(reach, reach_cluster, load):
    server, table = reach
    server.start()
    load(shipped_task(table))
    run, _ = run_start(task="stock_reservation", input={"sku": "missing", "quantity": 1})
    run = wait_for(run.pk, timeout=60)
    assert (run.status, run.state) == ("failed", "not_reserved")
    [attempt] = models.InstructionAttempt.objects.filter(run=run, instruction="reserve")
    assert attempt.error_class == "status"
    assert attempt.error == ("rpc inventory.v1.Stock/Reserve on connection 'inventory': "
                             "NOT_FOUND: no sku 'missing'")
    assert sql(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}]


def doc_example(name: str) -> str:
    [text] = [body for _, body in yaml_examples() if body.startswith(f"name: {name}\n")]
    return text


def test_the_docs_grpc_examples_run(reach, reach_cluster, load):
    server, _ = reach
    server.start()
    load(doc_example("await_inventory"))
    load(doc_example("reserve_over_grpc"))
    waiting, _ = run_start(task="await_inventory")
    reserving, _ = run_start(task="reserve_over_grpc", input={"sku": "B-2", "quantity": 3})
    waiting = wait_for(waiting.pk, timeout=60)
    assert (waiting.status, waiting.state) == ("succeeded", "serving"), waiting.error
    reserving = wait_for(reserving.pk, timeout=60)
    assert reserving.status == "succeeded", reserving.error
    assert reserving.data["reservation"]["id"] == "r-B-2-3"
    [call] = server.calls
    assert call["metadata"]["authorization"] == f"Bearer {TOKEN}"  # the secret reached it...
    assert TOKEN not in json.dumps(reserving.data)  # ...and is redacted from what is stored
