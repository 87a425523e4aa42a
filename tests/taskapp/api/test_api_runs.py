"""Runs over the API: start, read, follow, cancel, redrive, events — every status code."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils.dateparse import parse_datetime

from taskapp import models
from taskapp.services import run_advance

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PRIVATE = {"cursor", "lease_owner", "lease_expires_at", "version_", "signal"}


def test_start_returns_201_with_the_run(api, shop):
    response = api.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "A-1"}},
                        format="json")
    assert response.status_code == 201, response.data
    body = response.json()
    assert body["task"] == "shop_order" and body["version"] == 1
    assert body["status"] == "pending" and body["input"] == {"order_id": "A-1"}
    assert body["outcome"] is None and body["next_wake_at"] is not None
    assert not PRIVATE & set(body)
    assert models.Run.objects.filter(pk=body["id"]).exists()


def test_start_picks_the_latest_version_unless_one_is_given(api, shop):
    shop(2)
    latest = api.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "1"}},
                      format="json")
    pinned = api.post("/api/runs/", {"task": "shop_order", "version": 1,
                                     "input": {"order_id": "2"}}, format="json")
    assert (latest.json()["version"], pinned.json()["version"]) == (2, 1)


def test_same_idempotency_key_returns_the_existing_run_with_200(api, shop):
    body = {"task": "shop_order", "input": {"order_id": "A-1"}, "idempotency_key": "k-1"}
    first = api.post("/api/runs/", body, format="json")
    again = api.post("/api/runs/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert models.Run.objects.count() == 1


def test_start_at_schedules_the_run_later(api, shop, clock):
    later = clock.now().replace(microsecond=0) + timedelta(hours=1)
    response = api.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "1"},
                                       "start_at": later.isoformat()}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert parse_datetime(body["start_at"]) == later
    assert parse_datetime(body["next_wake_at"]) == later


def test_input_failing_the_schema_is_400_with_the_schema_errors(api, shop):
    response = api.post("/api/runs/", {"task": "shop_order", "input": {"amount": -1}},
                        format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "input_invalid"
    assert body["errors"] == {
        "input": ["'order_id' is a required property"],
        "input/amount": ["-1 is less than the minimum of 0"],
    }


def test_unknown_task_is_400_with_a_field_error_on_task(api, shop):
    response = api.post("/api/runs/", {"task": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "task_not_found"
    assert list(response.json()["errors"]) == ["task"]
    missing_version = api.post("/api/runs/", {"task": "shop_order", "version": 9,
                                              "input": {"order_id": "1"}}, format="json")
    assert missing_version.status_code == 400
    assert list(missing_version.json()["errors"]) == ["version"]


@pytest.mark.parametrize("body, field", [
    ({}, "task"),
    ({"task": "shop_order", "input": [1, 2]}, "input"),
    ({"task": "shop_order", "version": "two"}, "version"),
    ({"task": "shop_order", "version": 0}, "version"),
    ({"task": "shop_order", "start_at": "tomorrow"}, "start_at"),
    ({"task": "shop_order", "idempotency_key": ""}, "idempotency_key"),
])
def test_malformed_start_is_400_naming_the_field(api, shop, body, field):
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]


def test_body_that_is_not_json_is_400(api, shop):
    response = api.post("/api/runs/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_run_detail_shows_state_since_when_and_the_next_wake_up(api, waiting):
    run = waiting()
    body = api.get(f"/api/runs/{run.pk}/").json()
    assert body["status"] == "waiting" and body["state"] == "awaiting_payment"
    assert body["state_entered_at"] and body["time_in_state"] >= 0
    assert body["data"] == {"status": "waiting"}
    assert body["next_wake_at"] is not None
    assert body["metrics"]["attempts"] == 1


def test_unknown_run_is_404(api, db):
    response = api.get(f"/api/runs/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json()["code"] == "run_not_found"
    for tail in ("transitions/", "attempts/"):
        assert api.get(f"/api/runs/{uuid.uuid4()}/{tail}").status_code == 404
    for tail in ("cancel/", "redrive/", "events/"):
        response = api.post(f"/api/runs/{uuid.uuid4()}/{tail}", {"name": "x"}, format="json")
        assert response.status_code == 404, tail


def test_transitions_are_the_history_oldest_first(api, waiting):
    run = waiting()
    body = api.get(f"/api/runs/{run.pk}/transitions/").json()
    rows = [(t["seq"], t["from_state"], t["to_state"], t["trigger"]) for t in body["results"]]
    assert rows == [(1, "", "awaiting_payment", "start")]


def test_attempts_list_the_instruction_attempts(api, waiting):
    run = waiting()
    body = api.get(f"/api/runs/{run.pk}/attempts/").json()
    assert [(a["instruction"], a["kind"], a["ok"]) for a in body["results"]] == [
        ("set_0", "set", True)]


def test_cancel_a_waiting_run(api, waiting):
    run = waiting()
    response = api.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True
    run_advance(run_id=run.pk)
    assert api.get(f"/api/runs/{run.pk}/").json()["status"] == "cancelled"


def test_cancel_a_finished_run_is_409(api, failed):
    response = api.post(f"/api/runs/{failed.pk}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "run_conflict"
    assert "failed" in response.json()["message"]


def test_redrive_a_failed_run_from_a_given_state(api, failed):
    response = api.post(f"/api/runs/{failed.pk}/redrive/", {"state": "awaiting_payment"},
                        format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["state"]) == (
        "running", "awaiting_payment")
    history = api.get(f"/api/runs/{failed.pk}/transitions/").json()["results"]
    assert history[-1]["trigger"] == "redrive"


def test_redrive_into_a_final_state_or_an_unknown_one_is_409(api, failed):
    assert api.post(f"/api/runs/{failed.pk}/redrive/").status_code == 409  # stopped in final
    response = api.post(f"/api/runs/{failed.pk}/redrive/", {"state": "nowhere"}, format="json")
    assert response.status_code == 409


def test_redrive_a_waiting_run_is_409(api, waiting):
    run = waiting()
    response = api.post(f"/api/runs/{run.pk}/redrive/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "run_conflict"


def test_event_to_a_run_moves_it(api, waiting):
    run = waiting("A-7")
    response = api.post(f"/api/runs/{run.pk}/events/",
                        {"name": "payment.succeeded", "id": "pay-1", "data": {"amount": 5}},
                        format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["duplicate"] is False and response.json()["run"] == str(run.pk)
    run_advance(run_id=run.pk)
    body = api.get(f"/api/runs/{run.pk}/").json()
    assert (body["status"], body["state"], body["outcome"]) == ("succeeded", "paid",
                                                               "succeeded")
    assert body["data"]["payment"] == {"amount": 5}


def test_the_same_event_id_twice_is_200_and_sent_once(api, waiting):
    run = waiting()
    body = {"name": "payment.succeeded", "id": "pay-1"}
    first = api.post(f"/api/runs/{run.pk}/events/", body, format="json")
    again = api.post(f"/api/runs/{run.pk}/events/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert models.Event.objects.count() == 1


def test_event_to_a_finished_run_is_409(api, failed):
    response = api.post(f"/api/runs/{failed.pk}/events/", {"name": "payment.succeeded"},
                        format="json")
    assert response.status_code == 409


def test_event_without_a_name_is_400(api, waiting):
    run = waiting()
    response = api.post(f"/api/runs/{run.pk}/events/", {"data": {}}, format="json")
    assert response.status_code == 400 and "name" in response.json()["errors"]
