"""POST /api/events/ (by name and correlation, or buffered for a run) and a task's webhook,
open to its secret."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from taskapp import models
from taskapp.api.webhook import HEADER
from taskapp.services import run_advance

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PAID = {"name": "payment.succeeded", "data": {"amount": 12}}


def _state(run) -> tuple[str, str]:
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    return run.status, run.state


def test_event_by_correlation_reaches_every_subscribed_run_and_no_other(api, waiting):
    a, b = waiting("A-1"), waiting("B-2")
    response = api.post("/api/events/", {**PAID, "correlation": "A-1"}, format="json")
    assert response.status_code == 201
    assert response.json()["correlation"] == "A-1" and response.json()["run"] is None
    assert _state(a) == ("succeeded", "paid")
    assert _state(b) == ("waiting", "awaiting_payment")


def test_event_buffered_for_the_run_it_names(api, shop):
    from taskapp.services import run_start

    run, _ = run_start(task="shop_order", input={"order_id": "Z"})  # not yet subscribed
    response = api.post("/api/events/", {**PAID, "run": str(run.pk)}, format="json")
    assert response.status_code == 201
    assert _state(run) == ("succeeded", "paid")


def test_event_dedupe_id_is_200_the_second_time(api, waiting):
    waiting("A-1")
    body = {**PAID, "correlation": "A-1", "id": "evt-1"}
    assert api.post("/api/events/", body, format="json").status_code == 201
    again = api.post("/api/events/", body, format="json")
    assert again.status_code == 200 and again.json()["duplicate"] is True


@pytest.mark.parametrize("body, code", [
    ({"data": {}}, 400),
    ({**PAID, "run": "not-a-uuid"}, 400),
    ({**PAID, "run": str(uuid.UUID(int=1)), "correlation": "x"}, 400),
    ({**PAID, "ttl": -1}, 400),
    ({**PAID, "run": str(uuid.UUID(int=1))}, 404),
])
def test_bad_events(api, shop, body, code):
    assert api.post("/api/events/", body, format="json").status_code == code


def test_event_to_a_finished_run_named_in_the_body_is_409(api, failed):
    response = api.post("/api/events/", {**PAID, "run": str(failed.pk)}, format="json")
    assert response.status_code == 409


# ---------------------------------------------------------------------------- webhook


def test_webhook_secret_sends_the_event_without_a_user(waiting, webhook_env):
    run = waiting("A-1")
    client = APIClient(enforce_csrf_checks=True)
    response = client.post("/api/tasks/shop_order/events/", {**PAID, "correlation": "A-1"},
                           format="json", headers={HEADER: webhook_env})
    assert response.status_code == 201, response.json()
    assert _state(run) == ("succeeded", "paid")


@pytest.mark.parametrize("secret", ["wrong", "", "s3cret-shop-webhook-valu"])
def test_a_wrong_webhook_secret_is_401(waiting, webhook_env, secret):
    waiting("A-1")
    response = APIClient().post("/api/tasks/shop_order/events/", {**PAID, "correlation": "A-1"},
                                format="json", headers={HEADER: secret})
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert models.Event.objects.count() == 0


def test_no_webhook_secret_in_the_environment_refuses_every_secret(waiting, monkeypatch):
    waiting("A-1")
    response = APIClient().post("/api/tasks/shop_order/events/", PAID, format="json",
                                headers={HEADER: ""})
    assert response.status_code == 401
    assert "accepts no webhook secret" in response.json()["message"]


def test_the_webhook_sends_only_events_the_task_subscribes_to(waiting, webhook_env):
    waiting("A-1")
    response = APIClient().post("/api/tasks/shop_order/events/", {"name": "refund"},
                                format="json", headers={HEADER: webhook_env})
    assert response.status_code == 400
    assert "payment.succeeded" in response.json()["errors"]["name"][0]


def test_the_webhook_reaches_only_runs_of_its_task(waiting, webhook_env, greeter, no_dispatch):
    from taskapp.services import run_start

    greeter()
    other, _ = run_start(task="greeter")
    response = APIClient().post("/api/tasks/shop_order/events/",
                                {**PAID, "run": str(other.pk)}, format="json",
                                headers={HEADER: webhook_env})
    assert response.status_code == 404


def test_the_webhook_of_an_unknown_task_is_401_for_a_secret_and_404_for_a_user(api, db):
    assert APIClient().post("/api/tasks/nope/events/", PAID, format="json",
                            headers={HEADER: "x"}).status_code == 401
    assert api.post("/api/tasks/nope/events/", PAID, format="json").status_code == 404


def test_a_user_may_use_the_task_webhook_too(api, waiting):
    run = waiting("A-1")
    response = api.post("/api/tasks/shop_order/events/", {**PAID, "correlation": "A-1"},
                        format="json")
    assert response.status_code == 201
    assert _state(run) == ("succeeded", "paid")
