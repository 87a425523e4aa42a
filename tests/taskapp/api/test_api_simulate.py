"""``POST /api/tasks/simulate/``: dry runs over the API, behind their own permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from taskapp import models
from tests.taskapp.api.test_api_bad_input import assert_error

pytestmark = pytest.mark.django_db

PAID = {"input": {"order_id": "A-1"},
        "events": [{"at": "10m", "name": "payment.succeeded", "correlation": "A-1",
                    "data": {"amount": 5}}]}

TEXT = """
name: ping
version: 1
start_state: call
states:
  call:
    instructions:
      - name: ping
        http: {url: "https://far.example/ping"}
        retry: {max_attempts: 3, initial_delay: 5s, jitter: false}
        save_as: pong
    transitions: [{to: done}]
  done: {final: succeeded}
"""


def test_a_loaded_task_is_dry_run_and_nothing_is_stored(api, shop):
    response = api.post("/api/tasks/simulate/", {"task": "shop_order", "script": PAID},
                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["state"], body["end"]) == ("succeeded", "paid", "finished")
    assert [(t["from_state"], t["to_state"], t["trigger"], t["elapsed"])
            for t in body["transitions"]] == [(None, "awaiting_payment", "start", 0.0),
                                              ("awaiting_payment", "paid", "condition", 600.0)]
    assert body["data"]["payment"] == {"amount": 5}
    assert models.Run.objects.count() == 0 and models.Transition.objects.count() == 0


def test_a_text_not_loaded_is_dry_run_with_a_yaml_script(api):
    script = ("instructions:\n  ping: [{error: down, class: connection}, "
              "{status: 200, body: pong}]\n")
    response = api.post("/api/tasks/simulate/", {"text": TEXT, "script": script}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(a["attempt"], a["ok"], a["elapsed"]) for a in body["attempts"]] == [
        (1, False, 0.0), (2, True, 5.0)]
    assert body["data"]["pong"]["body"] == "pong"


@pytest.mark.parametrize(("request_body", "field", "message"), [
    ({"text": TEXT, "script": {"bogus": 1}}, "script", "unknown key 'bogus'"),
    ({"text": TEXT, "script": "events: [{at: 1h}]"}, "script", "an event needs a name"),
    ({"text": TEXT, "script": {}}, "script", "instruction 'ping' (http https://far.example/ping)"
                                             " in state 'call' has no scripted result"),
    ({"text": TEXT, "script": {"instructions": {"nope": {"result": 1}}}}, "script",
     "has no instruction 'nope'"),
    ({"text": "name: x", "script": {}}, "text", "error:"),
    ({"script": {}}, "task", "give either task"),
    ({"task": "shop_order", "text": TEXT, "script": {}}, "task", "give either task"),
    ({"text": TEXT, "script": 5}, "script", "a JSON object or its YAML text"),
    ({"task": "shop_order", "script": {"input": {}}}, "script", "'order_id' is a required"),
])
def test_bad_requests_are_400s_naming_the_field(api, shop, request_body, field, message):
    body = assert_error(api.post("/api/tasks/simulate/", request_body, format="json"), 400)
    assert body["code"] == "invalid"
    assert any(message in m for m in body["errors"][field]), body


def test_a_task_that_is_not_loaded_is_a_400(api):
    body = assert_error(api.post("/api/tasks/simulate/", {"task": "nope", "script": {}},
                                 format="json"), 400)
    assert body["code"] == "task_not_found"


def test_a_loop_ends_at_a_bound_it_names(api):
    text = ("name: spin\nversion: 1\nstart_state: a\nstates:\n"
            "  a: {transitions: [{to: done, when: 'input.stop'}, {to: b}]}\n"
            "  b: {transitions: [{to: a}]}\n  done: {final: succeeded}\n")
    response = api.post("/api/tasks/simulate/",
                        {"text": text, "script": {"input": {"stop": False}}}, format="json")
    assert response.status_code == 200
    assert (response.json()["end"], response.json()["bound"]) == ("bound", "transitions")


def test_simulating_needs_its_own_permission(shop):
    starter = User.objects.create_user("starter", password="pw")
    starter.user_permissions.add(*Permission.objects.filter(codename__in=["add_run",
                                                                          "change_run"]))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=starter).key}")
    body = assert_error(client.post("/api/tasks/simulate/",
                                    {"task": "shop_order", "script": PAID}, format="json"), 403)
    assert "taskapp.simulate_task" in body["message"]


def test_the_endpoint_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/tasks/simulate/"]["post"]
    assert "403" in operation["responses"] and "200" in operation["responses"]
