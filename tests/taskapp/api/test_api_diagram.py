"""GET /api/tasks/{name}/diagram/: SVG, DOT or Mermaid by ?format= or Accept; JSON errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_svg_by_default_with_every_state(read_only_api, shop):
    response = read_only_api.get("/api/tasks/shop_order/diagram/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    root = ET.fromstring(response.content)
    states = [g.get("data-state") for g in root.iter("{http://www.w3.org/2000/svg}g")
              if g.get("data-state")]
    assert states == ["awaiting_payment", "paid", "expired"]


@pytest.mark.parametrize(("fmt", "media", "needle"), [
    ("dot", "text/vnd.graphviz", 'label="subscribe payment.succeeded"'),
    ("mermaid", "text/vnd.mermaid", '-->|"subscribe payment.succeeded"|'),
    ("svg", "image/svg+xml", ">subscribe payment.succeeded</text>"),
])
def test_each_format_by_query_or_accept(api, shop, fmt, media, needle):
    by_query = api.get(f"/api/tasks/shop_order/diagram/?format={fmt}")
    by_accept = api.get("/api/tasks/shop_order/diagram/", HTTP_ACCEPT=media)
    for response in (by_query, by_accept):
        assert response.status_code == 200
        assert response["Content-Type"].startswith(media)
        assert needle in response.content.decode()


def test_a_given_version(api, shop):
    shop(2)
    assert 'data-version="1"' in api.get(
        "/api/tasks/shop_order/diagram/?version=1").content.decode()
    assert 'data-version="2"' in api.get("/api/tasks/shop_order/diagram/").content.decode()


def test_errors_are_json_whatever_the_format(api, shop):
    missing = api.get("/api/tasks/nope/diagram/?format=dot")
    assert missing.status_code == 404 and missing.json()["code"] == "task_not_found"
    assert api.get("/api/tasks/shop_order/diagram/?version=9").status_code == 404
    bad = api.get("/api/tasks/shop_order/diagram/?version=x")
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/json")
    assert api.get("/api/tasks/shop_order/diagram/?format=png").status_code == 404


def test_needs_a_signed_in_user_and_no_permission_beyond(anonymous, read_only_api, shop):
    refused = anonymous.get("/api/tasks/shop_order/diagram/")
    assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"
    # Reading tasks needs no model permission (as GET /api/tasks/{name}/).
    assert read_only_api.get("/api/tasks/shop_order/diagram/").status_code == 200


def test_documented_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/tasks/{name}/diagram/"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {
        "image/svg+xml", "text/vnd.graphviz", "text/vnd.mermaid"}
    assert {p["name"] for p in operation["parameters"]} >= {"name", "format", "version"}
    assert set(operation["responses"]["404"]["content"]) == {"application/json"}
