"""The run detail page (/runs/<id>/): login required, the run's fields and its history,
and what dashboard.js needs to keep it live; never writes."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_the_login(client, waiting_run):
    response = client.get(f"/runs/{waiting_run.pk}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_page_shows_fields_and_transitions_for_the_live_script(admin_client, waiting_run):
    page = admin_client.get(f"/runs/{waiting_run.pk}/").content.decode()
    assert f'data-run="{waiting_run.pk}"' in page and 'data-last-seq="2"' in page
    assert "greeter v1" in page and "resting" in page and "waiting" in page
    assert page.count('<tr data-seq="') == 2
    assert "dashboard/dashboard.js" in page


def test_unknown_run_is_404(admin_client):
    assert admin_client.get(f"/runs/{uuid.uuid4()}/").status_code == 404


def test_index_links_runs_to_their_page_and_tells_the_script_since_when(admin_client,
                                                                        waiting_run):
    page = admin_client.get("/").content.decode()
    assert f'href="/runs/{waiting_run.pk}/"' in page
    assert 'data-live="index" data-since="' in page


def test_run_page_never_writes(admin_client, waiting_run):
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(f"/runs/{waiting_run.pk}/")
    writes = [q["sql"] for q in queries
              if q["sql"].lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []
