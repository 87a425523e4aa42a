"""A browser's way into the API: ``/api/`` answers an index, the docs send a browser with no
session to sign in and back, the browsable API links to its sign-in; a favicon; the admin
says Async States."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_api_index_lists_the_entry_points_to_anyone(client):
    response = client.get("/api/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["runs"] == "http://testserver/api/runs/"
    assert body["docs"] == "http://testserver/api/docs/"
    assert body["sign_in"] == "http://testserver/api/auth/login/"
    assert body["signed_in_as"] is None


def test_api_index_in_the_browsable_api_has_a_title_and_a_sign_in_link(client):
    page = client.get("/api/", HTTP_ACCEPT="text/html").content.decode()
    assert "Async States API" in page and "Not Found" not in page
    assert "href='/api/auth/login/?next=/api/'>Log in" in page
    assert "Django REST framework" not in page


def test_docs_send_a_browser_without_a_session_to_sign_in_and_back(client):
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/api/docs/"
    signin = client.get(response["Location"])
    assert signin.status_code == 200 and b'name="next" value="/api/docs/"' in signin.content


def test_docs_after_signing_in(client, django_user_model):
    django_user_model.objects.create_user(username="reader", password="pw-reader-1")
    response = client.post("/login/", {"username": "reader", "password": "pw-reader-1",
                                       "next": "/api/docs/"})
    assert response.status_code == 302 and response["Location"] == "/api/docs/"
    assert client.get("/api/docs/").status_code == 200


def test_docs_without_credentials_still_401_for_programs(client):
    response = client.get("/api/docs/")
    assert response.status_code == 401


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")


def test_admin_is_branded(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Async States administration" in page and "Django administration" not in page
