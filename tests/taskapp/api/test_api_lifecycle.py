"""The lifecycle outbox in GET /api/health/ and GET /metrics: waiting, how long, and why."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from taskapp.lifecycle import Backoff, publish_round
from taskapp.services import cluster_heartbeat, definition_load, run_advance, run_start

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

TASK = """
name: told
version: 1
start_state: a
lifecycle: {connection: hook}
states:
  a: {final: succeeded}
"""


@pytest.fixture
def waiting_events(monkeypatch, clock):
    """Two events for a webhook whose receiver is down (nothing listens on port 9)."""
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_HOOK", "http://user:pw-123@127.0.0.1:9/h")
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none"}):
        assert definition_load(text=TASK, source="told.yaml").status == "loaded"
        run, _ = run_start(task="told")
        run_advance(run_id=run.pk)
        publish_round(Backoff())
        clock.advance(3)
        yield


def test_health_names_the_waiting_destination_and_its_error_but_stays_ok(
        anonymous, waiting_events, clock):
    cluster_heartbeat(owner="host:1", started_at=clock.now())
    response = anonymous.get("/api/health/")
    assert response.status_code == 200, response.json()
    check = response.json()["checks"]["lifecycle"]
    assert check["ok"]
    assert check["detail"].startswith("connection 'hook': 2 waiting, oldest 3.0s, failing (1 ")
    assert "cannot reach the receiver (ConnectionError)" in check["detail"]
    assert "pw-123" not in response.content.decode()


def test_metrics_give_pending_lag_and_failing_per_destination(api, waiting_events):
    families = {f.name: f.samples for f in
                text_string_to_metric_families(api.get("/metrics").content.decode())}
    sample = {name: [(s.labels["destination"], s.value) for s in families[name]]
              for name in ("async_states_lifecycle_pending", "async_states_lifecycle_lag_seconds",
                           "async_states_lifecycle_failing")}
    assert sample == {
        "async_states_lifecycle_pending": [("connection 'hook'", 2)],
        "async_states_lifecycle_lag_seconds": [("connection 'hook'", 3.0)],
        "async_states_lifecycle_failing": [("connection 'hook'", 1)],
    }
