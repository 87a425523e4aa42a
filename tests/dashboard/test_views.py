"""The dashboard page: login required, shows counts, tasks and recent runs, never writes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_page_shows_status_counts_tasks_and_recent_runs(admin_client, waiting_run):
    response = admin_client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert dict(response.context["status_counts"])["waiting"] == 1
    assert "greeter" in page and "v1" in page
    assert "waiting · resting: 1" in page
    assert f"/admin/taskapp/run/{waiting_run.pk}/change/" in page


def test_empty_page_says_how_to_load_tasks(admin_client):
    page = admin_client.get("/").content.decode()
    assert "No task is loaded" in page
    assert "No runs yet" in page


def test_page_never_writes(admin_client, waiting_run):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/")
    writes = [q["sql"] for q in queries
              if q["sql"].lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []
