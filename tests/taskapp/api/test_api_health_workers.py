"""GET /api/health/ sees workers in trouble: a step stuck far past its budget (503, from
the watchdog's incident row or from the run table), and recycles for memory (said, 200);
and sizes over their limits are a 400 with the JSON error shape."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import override_settings

from taskapp import models, watchdog
from taskapp.services import cluster_heartbeat, run_start, worker_recycle_due, workers
from taskapp.services import runs as runs_module

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def beating(clock):
    cluster_heartbeat(owner="host:1", started_at=clock.now())


def _workers_check(anonymous):
    response = anonymous.get("/api/health/")
    return response.status_code, response.json()["checks"]["workers"]


def test_a_quiet_cluster_is_healthy(anonymous, beating):
    assert _workers_check(anonymous) == (200, {"ok": True,
                                               "detail": "no stuck step, no recycle"})


def test_a_run_held_past_stuck_step_seconds_makes_health_503(anonymous, shop, clock, beating):
    run, _ = run_start(task="shop_order", input={"order_id": "S-1"})
    assert runs_module._claim(run.pk, "host:7:abc:1") is not None
    clock.advance(119)
    cluster_heartbeat(owner="host:1", started_at=clock.now())
    assert _workers_check(anonymous)[0] == 200
    clock.advance(2)
    cluster_heartbeat(owner="host:1", started_at=clock.now())
    status, check = _workers_check(anonymous)
    assert status == 503 and check == {"ok": False, "detail": (
        f"1 run(s) held past STUCK_STEP_SECONDS=120s: run {run.pk} in state '' by "
        "host:7:abc:1 for 121s")}


def test_the_watchdog_reports_a_stuck_step_and_withdraws_it_when_it_ends(
        anonymous, clock, beating):
    dog = watchdog.Watchdog()
    workers.step_began("run-x")
    try:
        step = workers.current_step()
        dog.look(now_monotonic=step.began + 119)
        assert not models.WorkerIncident.objects.exists()
        dog.look(now_monotonic=step.began + 121)  # (b + 120) - b may round below 120
        incident = models.WorkerIncident.objects.get()
        assert (incident.kind, incident.run_id, incident.owner, incident.since) == (
            "stuck", "run-x", workers.worker_owner(), step.began_at)
        status, check = _workers_check(anonymous)
        assert status == 503 and check["detail"].startswith(
            f"1 worker(s) stuck in a step: run run-x on {workers.worker_owner()} for ")
    finally:
        workers.step_ended()
    dog.look(now_monotonic=time.monotonic())
    assert not models.WorkerIncident.objects.exists()
    assert _workers_check(anonymous)[0] == 200


def test_a_worker_past_max_rss_notes_its_recycle_once(anonymous, clock, beating, monkeypatch):
    monkeypatch.setattr(workers, "_recycle_noted", {})
    with override_settings(Q_CLUSTER={**settings.Q_CLUSTER, "max_rss": 1}):
        assert worker_recycle_due() is True
        assert worker_recycle_due() is False  # once per process
    status, check = _workers_check(anonymous)
    assert status == 200 and check["ok"]
    assert check["detail"].startswith("1 worker(s) recycled for memory in the last 10 min")
    monkeypatch.setattr(workers, "_recycle_noted", {})
    with override_settings(Q_CLUSTER={**settings.Q_CLUSTER, "max_rss": 1 << 40}):
        assert worker_recycle_due() is False


def test_input_over_its_limit_is_a_400_naming_the_limit(api, shop):
    limits = {**settings.ASYNC_STATES, "DISPATCH": "none", "MAX_INPUT_BYTES": 64}
    with override_settings(ASYNC_STATES=limits):
        response = api.post("/api/runs/", {"task": "shop_order",
                                           "input": {"order_id": "x" * 100}}, format="json")
    assert response.status_code == 400
    message = ("the input of a run of task 'shop_order' is 115 bytes as JSON; the limit is "
               "64 bytes (MAX_INPUT_BYTES)")
    assert response.json() == {"code": "input_too_large", "message": message,
                               "errors": {"input": [message]}}
    assert not models.Run.objects.exists()


def test_an_event_payload_over_its_limit_is_a_400(api, shop):
    limits = {**settings.ASYNC_STATES, "DISPATCH": "none", "MAX_EVENT_BYTES": 20}
    with override_settings(ASYNC_STATES=limits):
        response = api.post("/api/events/", {"name": "payment.received", "correlation": "A",
                                             "data": {"v": "y" * 20}}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "event_too_large"
    assert response.json()["errors"] == {"data": [
        "the payload of event 'payment.received' is 28 bytes as JSON; the limit is 20 "
        "bytes (MAX_EVENT_BYTES)"]}
    assert not models.Event.objects.exists()
