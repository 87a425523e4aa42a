"""A service the API needs being down: a 503 with ``Retry-After`` in the error shape, and
nothing half-done behind a 5xx. A run is either started and returned, or not created.

The broker is a real django-q2 Redis broker pointed at a closed port; the database is the
real one, with the connection pointed at a closed port (PostgreSQL) or a path that cannot
be opened (SQLite)."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django_q.brokers.redis_broker import Redis
from rest_framework.test import APIClient

from taskapp import dispatch, models
from taskapp.services import run_advance, wakeups_fire

RETRY_AFTER = "5"  # API_RETRY_AFTER_SECONDS


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_retrying_on_5xx(client: APIClient, url: str, body: dict, tries: int = 3):
    """What a careless client does: send again, with no idempotency key, after any 5xx."""
    for _ in range(tries):
        response = client.post(url, body, format="json")
        if response.status_code < 500:
            return response
    return response


@pytest.fixture
def broker_down(monkeypatch):
    """Dispatch through django-q2's Redis broker, whose Redis is not there."""
    broker = Redis(list_key="as_api_broker_down")
    broker.connection = redis.Redis(host="127.0.0.1", port=_closed_port(),
                                    socket_connect_timeout=2, socket_timeout=2)
    monkeypatch.setitem(dispatch._brokers, "broker", broker)
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "queue"}):
        yield broker


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_run_started_while_the_broker_is_down_is_201_once_and_its_backstop_fires_it(
        api, shop, broker_down, clock, caplog):
    caplog.set_level(logging.WARNING, logger="async_states.dispatch")
    response = post_retrying_on_5xx(api, "/api/runs/", {"task": "shop_order",
                                                        "input": {"order_id": "D-1"}})

    assert response.status_code == 201, response.content
    run = models.Run.objects.get()  # one run: the client had no reason to send again
    assert str(run.pk) == response.json()["id"]
    assert (run.status, run.wake_at) == ("pending", clock.now() + timedelta(seconds=30))
    assert "dispatch.enqueue_failed" in caplog.text  # the broker was tried, and refused
    with pytest.raises(redis.ConnectionError):
        broker_down.ping()

    # The timer fires the run at its backstop, and a worker moves it on.
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none"}):
        assert wakeups_fire(now=clock.now() + timedelta(seconds=29)) == []
        assert wakeups_fire(now=run.wake_at) == [str(run.pk)]
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.state) == ("waiting", "awaiting_payment")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_events_and_cancels_while_the_broker_is_down_are_answered_and_kept(
        api, waiting, broker_down, webhook_env):
    run = waiting("D-2")
    sent = api.post("/api/events/", {"name": "payment.succeeded", "correlation": "D-2"},
                    format="json")
    assert sent.status_code == 201, sent.content
    cancelled = api.post(f"/api/runs/{run.pk}/cancel/")
    assert cancelled.status_code == 200, cancelled.content
    run.refresh_from_db()
    assert run.status == "cancelled"  # cancel ends the run in the call: no worker needed
    assert models.Event.objects.count() == 1


@pytest.fixture
def database_down(django_db_blocker, monkeypatch):
    """The default connection pointed where no database answers."""
    connection = connections["default"]
    with django_db_blocker.unblock():
        connection.close()
        if connection.vendor == "sqlite":
            monkeypatch.setitem(connection.settings_dict, "NAME",
                                "/nonexistent/as_api/down.sqlite3")
        else:
            monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
            monkeypatch.setitem(connection.settings_dict, "PORT", str(_closed_port()))
        yield
        connection.close()


@pytest.mark.postgres
@pytest.mark.parametrize("method, url, body", [
    ("get", "/api/runs/", None),
    ("post", "/api/runs/", {"task": "shop_order", "input": {"order_id": "X"}}),
    ("get", "/api/runs/00000000-0000-0000-0000-000000000001/", None),
    ("post", "/api/runs/00000000-0000-0000-0000-000000000001/cancel/", None),
    ("post", "/api/events/", {"name": "payment.succeeded", "correlation": "X"}),
    ("get", "/api/tasks/", None),
    ("post", "/api/tasks/validate/", {"text": "name: x"}),
])
def test_a_request_while_the_database_is_down_is_503_with_retry_after(
        database_down, method, url, body):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = getattr(client, method)(url, body, format="json")
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == RETRY_AFTER
    assert response.json()["code"] == "database_unavailable"
    assert set(response.json()) == {"code", "message", "errors"}


@pytest.mark.postgres
def test_health_says_which_service_is_down(database_down):
    response = APIClient().get("/api/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["ok"] is False


@pytest.mark.django_db
@pytest.mark.postgres
def test_a_database_failure_after_the_run_is_committed_still_answers_201(api, shop,
                                                                         monkeypatch):
    """The view reads the run again to show it; if the database goes away just then, the run
    exists all the same: the client gets it (201), not a 503 that it would retry into a
    second run."""
    from django.db import OperationalError

    def gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("taskapp.api.runs.selectors.run_get", gone)
    response = post_retrying_on_5xx(api, "/api/runs/", {"task": "shop_order",
                                                        "input": {"order_id": "L-1"}})
    assert response.status_code == 201, response.content
    assert models.Run.objects.count() == 1
    assert response.json()["id"] == str(models.Run.objects.get().pk)
