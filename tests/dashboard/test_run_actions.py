"""The run page's actions: cancel, redrive, send an event. Only for users who may control
runs (the API's rule), with CSRF and a confirmation; they call taskapp's services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "actions-password"


@pytest.fixture
def viewer(django_user_model):
    return django_user_model.objects.create_user(username="viewer", password=PASSWORD)


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user(username="operator", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="change_run"))
    return user


def _client(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_buttons_are_absent_without_the_permission(viewer, waiting_run):
    page = _client(viewer).get(f"/runs/{waiting_run.pk}/").content.decode()
    assert 'id="actions"' not in page and "Cancel run" not in page and "/cancel/" not in page


def test_buttons_are_shown_with_the_permission(operator, waiting_run):
    page = _client(operator).get(f"/runs/{waiting_run.pk}/").content.decode()
    assert 'id="cancel-run"' in page and 'id="send-event"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<option value="resting" selected>' in page  # redrive: where it stopped


@pytest.mark.parametrize("action", ["cancel", "redrive", "events"])
def test_a_forged_post_without_the_permission_is_403(viewer, waiting_run, action):
    response = _client(viewer).post(f"/runs/{waiting_run.pk}/{action}/",
                                    {"confirmed": "yes", "name": "go"})
    assert response.status_code == 403
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


def test_a_post_without_the_csrf_token_is_403(operator, waiting_run):
    response = _client(operator, csrf=True).post(f"/runs/{waiting_run.pk}/cancel/",
                                                 {"confirmed": "yes"})
    assert response.status_code == 403
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


def test_anonymous_post_goes_to_the_login(client, waiting_run):
    response = client.post(f"/runs/{waiting_run.pk}/cancel/", {"confirmed": "yes"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_unconfirmed_post_asks_first_and_changes_nothing(operator, waiting_run):
    response = _client(operator).post(f"/runs/{waiting_run.pk}/cancel/")
    assert response.status_code == 200
    assert b'name="confirmed" value="yes"' in response.content
    waiting_run.refresh_from_db()
    assert waiting_run.status == "waiting"


def test_cancel_then_redrive_from_the_page(operator, waiting_run):
    client = _client(operator)
    response = client.post(f"/runs/{waiting_run.pk}/cancel/", {"confirmed": "yes"}, follow=True)
    assert "✓ Run cancelled." in response.content.decode()
    waiting_run.refresh_from_db()
    assert waiting_run.status == "cancelled"
    response = client.post(f"/runs/{waiting_run.pk}/redrive/",
                           {"confirmed": "yes", "state": "greet"}, follow=True)
    assert "✓ Run redriven from state greet." in response.content.decode()
    waiting_run.refresh_from_db()
    assert (waiting_run.status, waiting_run.state) == ("running", "greet")
    triggers = list(waiting_run.transitions.order_by("seq").values_list("trigger", flat=True))
    assert triggers[-2:] == ["cancel", "redrive"]


def test_a_refused_action_says_why(operator, waiting_run):
    response = _client(operator).post(f"/runs/{waiting_run.pk}/redrive/",
                                      {"confirmed": "yes"}, follow=True)
    page = response.content.decode()
    assert "✗ Redrive refused:" in page and "waiting" in page


def test_send_event_with_json_data(operator, waiting_run):
    client = _client(operator)
    response = client.post(f"/runs/{waiting_run.pk}/events/",
                           {"confirmed": "yes", "name": "go", "data": '{"ok": true}'},
                           follow=True)
    assert "✓ Event go sent." in response.content.decode()
    event = waiting_run.events.get()
    assert (event.name, event.payload) == ("go", {"ok": True})


def test_send_event_with_bad_json_is_refused_by_name(operator, waiting_run):
    response = _client(operator).post(f"/runs/{waiting_run.pk}/events/",
                                      {"confirmed": "yes", "name": "go", "data": "{'a': 1}"},
                                      follow=True)
    assert "✗ Send event refused: JSON parse error" in response.content.decode()
    assert not waiting_run.events.exists()
