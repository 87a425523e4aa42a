"""GET /api/health/, GET /metrics, and the OpenAPI schema with its UI."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from taskapp import dispatch
from taskapp.services import cluster_heartbeat, cluster_listeners_report

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_health_is_503_naming_the_missing_cluster(anonymous, clock):
    response = anonymous.get("/api/health/")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert not checks["cluster"]["ok"] and "qcluster" in checks["cluster"]["detail"]
    assert response.json()["status"] == "unavailable"


def test_health_is_200_while_a_cluster_beats(anonymous, clock):
    cluster_heartbeat(owner="host:1", started_at=clock.now())
    response = anonymous.get("/api/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
    clock.advance(60)  # the cluster stopped beating
    assert anonymous.get("/api/health/").status_code == 503


def test_health_names_a_broken_broker(anonymous, clock, monkeypatch):
    cluster_heartbeat(owner="host:1", started_at=clock.now())
    monkeypatch.setattr(dispatch, "broker_status", lambda: (False, "Redis: refused", None))
    response = anonymous.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "detail": "Redis: refused"}


def _metrics(api) -> dict[str, list]:
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = text_string_to_metric_families(response.content.decode())
    return {f.name: f.samples for f in families}


def test_metrics_count_runs_transitions_attempts_and_the_queue(api, waiting, failed, clock):
    waiting("B")
    metrics = _metrics(api)
    runs = {(s.labels["task"], s.labels["status"]): s.value for s in metrics["async_states_runs"]}
    assert runs == {("shop_order", "waiting"): 1, ("shop_order", "failed"): 1}
    active = metrics["async_states_active_runs"]
    assert [(s.labels["state"], s.value) for s in active] == [("awaiting_payment", 1)]
    transitions = {s.labels["trigger"]: s.value for s in metrics["async_states_transitions"]
                   if s.name.endswith("_total")}
    assert transitions == {"start": 2, "condition": 1}
    attempts = [s for s in metrics["async_states_instruction_attempts"]
                if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in attempts] == [({"kind": "set", "result": "ok"}, 2)]
    assert "async_states_queue_depth" in metrics
    assert "async_states_cluster_processes" in metrics


def test_metrics_histograms(api, failed):
    metrics = _metrics(api)
    state = {s.labels.get("le"): s.value
             for s in metrics["async_states_state_duration_seconds"] if s.name.endswith("bucket")}
    assert state["3600.0"] == 1 and state["+Inf"] == 2  # start (0 s) and expiry (3601 s)
    assert state["1.0"] == 1
    attempts = [s for s in metrics["async_states_instruction_duration_seconds"]
                if s.name.endswith("_count")]
    assert [(s.labels["kind"], s.value) for s in attempts] == [("set", 1)]


def test_timer_lag_is_how_overdue_the_oldest_wake_up_is(api, waiting, clock):
    waiting("A")
    assert _metrics(api)["async_states_timer_lag_seconds"][0].value == 0
    clock.advance(3600 + 30)  # due after 1 h; nobody fired it
    lag = _metrics(api)["async_states_timer_lag_seconds"][0].value
    assert timedelta(seconds=lag) == timedelta(seconds=30)


def test_the_schema_is_served_and_valid(api, tmp_path):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/runs/", "/api/runs/{id}/cancel/", "/api/events/",
            "/api/tasks/validate/", "/api/health/", "/metrics"} <= set(paths)
    call_command("spectacular", "--validate", "--fail-on-warn",
                 "--file", str(tmp_path / "schema.yaml"))


def test_swagger_ui_is_served_from_local_static_files(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    # Nothing is fetched from another host. (Not `"cdn" not in page`: the page carries a
    # random token, which now and then contains those three letters.)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), page


LISTENER = {"source": "amqp connection 'shop' queue 'orders'", "connected": True,
            "connected_at": 1.0, "last_message_at": 1700000000.0, "messages": 5, "events": 4,
            "duplicates": 1, "poison": 0, "errors": 0, "reconnects": 0, "last_error": "",
            "last_error_at": None}


def test_health_shows_the_broker_listeners(anonymous, clock):
    cluster_heartbeat(owner="host:1/c1", started_at=clock.now())
    response = anonymous.get("/api/health/")
    assert response.json()["checks"]["listeners"] == {
        "ok": True, "detail": "no broker source declared"}
    cluster_listeners_report(owner="host:1/c1", listeners=[LISTENER])
    assert response.status_code == 200
    assert anonymous.get("/api/health/").json()["checks"]["listeners"]["detail"] == (
        "1 listener(s) connected; 5 message(s) taken")
    down = dict(LISTENER, connected=False, last_error="ConnectionError: connection 'shop': "
                "refused")
    cluster_listeners_report(owner="host:1/c1", listeners=[down])
    response = anonymous.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["listeners"] == {"ok": False, "detail": (
        "1 of 1 listener(s) disconnected: amqp connection 'shop' queue 'orders' on host:1/c1: "
        "ConnectionError: connection 'shop': refused")}


def test_metrics_show_the_broker_listeners(api, clock):
    cluster_heartbeat(owner="host:1/c1", started_at=clock.now())
    cluster_listeners_report(owner="host:1/c1", listeners=[LISTENER])
    metrics = _metrics(api)
    labels = {"source": LISTENER["source"], "cluster": "host:1/c1"}
    assert [(s.labels, s.value) for s in metrics["async_states_listener_connected"]] == [
        (labels, 1.0)]
    counted = {name: [s.value for s in metrics[f"async_states_listener_{name}"]
                      if s.name.endswith("_total")]
               for name in ("messages", "events", "duplicates", "poison", "errors")}
    assert counted == {"messages": [5], "events": [4], "duplicates": [1], "poison": [0],
                       "errors": [0]}
    assert metrics["async_states_listener_last_message_timestamp_seconds"][0].value == (
        1700000000.0)


def test_a_source_whose_connection_is_not_configured_is_said_but_not_an_outage(anonymous,
                                                                             clock):
    cluster_heartbeat(owner="host:1/c1", started_at=clock.now())
    unset = dict(LISTENER, connected=False, configured=False, messages=0,
                 source="mqtt connection 'devices' topic 't' group 'async_states'")
    cluster_listeners_report(owner="host:1/c1", listeners=[LISTENER, unset])
    response = anonymous.get("/api/health/")
    assert response.status_code == 200
    assert response.json()["checks"]["listeners"]["detail"] == (
        "1 listener(s) connected; 5 message(s) taken; 1 wait for their connection to be "
        "configured: mqtt connection 'devices' topic 't' group 'async_states'")
