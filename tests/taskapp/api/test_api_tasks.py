"""GET /api/tasks/, GET /api/tasks/{name}/, POST /api/tasks/validate/."""

from __future__ import annotations

import pytest

from tests.taskapp.api.conftest import SHOP

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_tasks_lists_each_task_once_with_its_latest_version(api, shop, greeter):
    shop(2)
    greeter()
    body = api.get("/api/tasks/").json()
    assert [(t["name"], t["latest_version"], t["versions"]) for t in body] == [
        ("greeter", 1, 1), ("shop_order", 2, 2)]


def test_task_detail_has_versions_graph_and_runs_per_state(api, waiting, failed):
    waiting("B")
    body = api.get("/api/tasks/shop_order/").json()
    assert body["version"] == 1 and [v["version"] for v in body["versions"]] == [1]
    graph = body["graph"]
    assert graph["start_state"] == "awaiting_payment"
    assert [(s["name"], s["final"], s["outcome"]) for s in graph["states"]] == [
        ("awaiting_payment", False, None), ("paid", True, "succeeded"),
        ("expired", True, "failed")]
    assert [(e["source"], e["target"], e["condition_kind"]) for e in graph["transitions"]] == [
        ("awaiting_payment", "paid", "subscribe"), ("awaiting_payment", "expired", "wait")]
    assert body["runs_in_state"] == {"awaiting_payment": {"waiting": 1}}
    assert body["runs_by_status"] == {"waiting": 1, "failed": 1}


def test_task_detail_of_a_given_version(api, shop):
    shop(2)
    assert api.get("/api/tasks/shop_order/?version=1").json()["version"] == 1
    assert api.get("/api/tasks/shop_order/").json()["version"] == 2


@pytest.mark.parametrize("url, code", [
    ("/api/tasks/nope/", 404),
    ("/api/tasks/shop_order/?version=7", 404),
    ("/api/tasks/shop_order/?version=x", 400),
    ("/api/tasks/shop_order/?version=0", 400),
])
def test_task_detail_errors(api, shop, url, code):
    response = api.get(url)
    assert response.status_code == code
    assert response.json()["code"] in {"task_not_found", "invalid"}


def test_validate_a_good_definition(api, db):
    response = api.post("/api/tasks/validate/", {"text": SHOP.replace("VERSION", "3")},
                        format="json")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "task": "shop_order", "version": 3, "problems": []}


def test_validate_reports_problems_with_line_and_column(api, db):
    text = "name: broken\nversion: 1\nstart_state: a\nstates:\n  a:\n    transitions:\n" \
           "      - to: nowhere\n"
    body = api.post("/api/tasks/validate/", {"text": text, "source": "b.yaml"},
                    format="json").json()
    assert body["ok"] is False and body["task"] is None
    assert [(p["line"], p["column"], p["severity"], p["path"]) for p in body["problems"]] == [
        (5, 3, "warning", "states.a"), (7, 13, "error", "states.a.transitions[0].to")]
    assert "'nowhere', which is not a state" in body["problems"][1]["message"]


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml", "text/plain"])
def test_validate_takes_the_yaml_as_the_body(api, db, content_type):
    response = api.generic("POST", "/api/tasks/validate/", "name: [", content_type=content_type)
    assert response.status_code == 200
    assert response.json()["ok"] is False and response.json()["problems"]


def test_validate_nothing_is_400(api, db):
    assert api.post("/api/tasks/validate/", {}, format="json").status_code == 400
    assert api.generic("POST", "/api/tasks/validate/", b"\xff\xfe",
                       content_type="text/plain").status_code == 400


def test_validate_text_yaml_cannot_hold_is_a_problem_not_a_500(api, db):
    body = api.post("/api/tasks/validate/", {"text": "name: a\nversion: \x89\n"},
                    format="json").json()
    assert body["ok"] is False
    assert [(p["line"], p["column"]) for p in body["problems"]] == [(2, 10)]
    assert "#x0089" in body["problems"][0]["message"]
