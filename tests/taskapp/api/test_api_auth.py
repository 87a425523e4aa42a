"""Who may call what: anonymous 401 everywhere but health, read-only users 403 on changes,
tokens for programs, sessions with CSRF for browsers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

RUN = "00000000-0000-0000-0000-000000000001"
EVERY_ENDPOINT = [
    ("get", "/api/runs/"), ("post", "/api/runs/"), ("get", f"/api/runs/{RUN}/"),
    ("get", f"/api/runs/{RUN}/transitions/"), ("get", f"/api/runs/{RUN}/attempts/"),
    ("post", f"/api/runs/{RUN}/cancel/"), ("post", f"/api/runs/{RUN}/redrive/"),
    ("post", f"/api/runs/{RUN}/events/"), ("post", "/api/events/"), ("get", "/api/tasks/"),
    ("get", "/api/tasks/shop_order/"), ("post", "/api/tasks/validate/"),
    ("post", "/api/tasks/shop_order/events/"), ("get", "/metrics"),
    ("get", "/api/schema/"), ("get", "/api/docs/"),
]


@pytest.mark.parametrize("method, url", EVERY_ENDPOINT)
def test_anonymous_is_401_everywhere(anonymous, shop, method, url):
    response = getattr(anonymous, method)(url, {}, format="json")
    assert response.status_code == 401, url
    assert response["WWW-Authenticate"] == "Token"
    if url != "/metrics" and "json" in response["Content-Type"]:
        assert response.json()["code"] == "not_authenticated"


def test_health_needs_no_user(anonymous, db):
    assert anonymous.get("/api/health/").status_code in (200, 503)


def test_a_bad_token_is_401(shop):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = client.get("/api/runs/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_read_only_users_read(read_only_api, waiting):
    run = waiting()
    for url in ("/api/runs/", f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/transitions/",
                "/api/tasks/", "/api/tasks/shop_order/", "/metrics"):
        assert read_only_api.get(url).status_code == 200, url
    assert read_only_api.post("/api/tasks/validate/", {"text": "x"},
                              format="json").status_code == 200


def test_read_only_users_may_not_change_runs(read_only_api, waiting):
    run = waiting()
    attempts = [
        ("/api/runs/", {"task": "shop_order", "input": {"order_id": "1"}}),
        (f"/api/runs/{run.pk}/cancel/", {}),
        (f"/api/runs/{run.pk}/redrive/", {}),
        (f"/api/runs/{run.pk}/events/", {"name": "payment.succeeded"}),
        ("/api/events/", {"name": "payment.succeeded", "correlation": "A-1"}),
        ("/api/tasks/shop_order/events/", {"name": "payment.succeeded"}),
    ]
    for url, body in attempts:
        response = read_only_api.post(url, body, format="json")
        assert response.status_code == 403, url
        assert response.json()["code"] == "permission_denied"
        assert "taskapp." in response.json()["message"]
    run.refresh_from_db()
    assert not run.cancel_requested


def test_start_needs_add_run_and_cancel_needs_change_run(shop, waiting):
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    starter = User.objects.create_user("starter")
    starter.user_permissions.add(Permission.objects.get(codename="add_run"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=starter).key}")
    created = client.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "1"}},
                          format="json")
    assert created.status_code == 201
    assert client.post(f"/api/runs/{created.json()['id']}/cancel/").status_code == 403


def test_session_login_needs_the_csrf_token_for_changes(operator, shop):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="operator", password="pw-operator")
    assert client.get("/api/runs/").status_code == 200
    body = {"task": "shop_order", "input": {"order_id": "1"}}
    refused = client.post("/api/runs/", body, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    client.get("/admin/login/")  # any page that sets the cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/runs/", body, format="json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_superusers_may_do_everything(shop, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client = APIClient()
    client.force_authenticate(admin)
    assert client.post("/api/runs/", {"task": "shop_order", "input": {"order_id": "1"}},
                       format="json").status_code == 201
