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
    assert response["Location"].startswith("/login/")


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


def test_run_page_shows_json_not_python_reprs_and_the_full_id(admin_client, greeter, no_dispatch):
    from taskapp.services import run_advance, run_start

    greeter()
    run, _ = run_start(task="greeter", input={"name": "Ada", "vip": False, "note": None})
    run_advance(run_id=run.pk)
    page = admin_client.get(f"/runs/{run.pk}/").content.decode()
    assert "&quot;vip&quot;: false" in page and "&quot;note&quot;: null" in page
    assert "&#x27;vip&#x27;" not in page and "False" not in page
    assert "&quot;greeting&quot;: &quot;Hello Ada&quot;" in page
    assert f"<code>{run.pk}</code>" in page and f'data-copy="{run.pk}"' in page
    assert f"{str(run.pk)[:8]}…" not in page
    assert 'data-countdown="' in page  # the wait's wake-up, counted down by the script
    assert '<tr data-state="resting"><td>resting <strong>(now)</strong>' in page


def test_run_page_lists_attempts_with_their_idempotency_key(admin_client, waiting_run):
    page = admin_client.get(f"/runs/{waiting_run.pk}/").content.decode()
    assert f"{waiting_run.pk}:1:" in page  # run id : state entry : instruction
    assert "✓ ok" in page


def test_panels_are_the_live_part_of_the_page(admin_client, waiting_run):
    response = admin_client.get(f"/runs/{waiting_run.pk}/panels/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="run-panels"') and "<main" not in html
    assert 'data-status="waiting"' in html


def test_panels_need_a_session(client, waiting_run):
    assert client.get(f"/runs/{waiting_run.pk}/panels/").status_code == 302


HOSTILE = """\
name: hostile
version: 1
description: "<script>alert('d')</script> \\"quotes\\""
start_state: first
states:
  first:
    instructions:
      - set: {evil: "</pre><script>alert(1)</script> \\"q\\" 's'"}
    transitions:
      - to: second
  second:
    transitions:
      - to: end
        subscribe: {event: go}
  end:
    final: succeeded
"""


def test_hostile_state_names_and_data_are_escaped(admin_client, db, no_dispatch):
    from taskapp.services import definition_load, run_advance, run_start

    assert definition_load(text=HOSTILE, source="hostile.yaml").status == "loaded"
    run, _ = run_start(task="hostile", input={"<i>": "<script>alert(3)</script>"})
    run_advance(run_id=run.pk)
    for url in (f"/runs/{run.pk}/", f"/runs/{run.pk}/panels/", "/runs/", "/", "/tasks/hostile/"):
        page = admin_client.get(url).content.decode()
        assert "<script>alert" not in page, url
        assert "<img src=x" not in page, url
    page = admin_client.get(f"/runs/{run.pk}/").content.decode()
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\&quot;q\\&quot; &#x27;s&#x27;" in page  # JSON (an escaped quote), then HTML


def test_state_names_cannot_carry_markup(db):
    """What reaches the pages as a state name is letters, digits, _ and - (the loader's
    rule), so markup in a name never gets that far."""
    from taskapp.services import definition_load

    result = definition_load(text=HOSTILE.replace("second", "'<b>x</b>'"), source="h.yaml")
    assert result.status == "invalid"
    assert "may use only letters, digits, _ and -" in str(result.problems)
