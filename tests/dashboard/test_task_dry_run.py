"""The task page's dry run: offered only to users with ``taskapp.simulate_task``, refused
(403) to a forged POST without it, bounded like the API, and answered with the simulated path
(as rows the diagram's overlay reads) and the text history. Nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings

from taskapp.models import Run, Transition
from taskapp.services import definition_load

pytestmark = pytest.mark.django_db

TASKDEFS = Path(__file__).resolve().parents[2] / "taskdefs"
HELLO = (TASKDEFS / "hello.yaml").read_text()
SCRIPT = (TASKDEFS / "hello.sim.yaml").read_text()


@pytest.fixture
def hello(db):
    assert definition_load(text=HELLO, source="hello.yaml").status == "loaded"


def _client(client, django_user_model, *, may_simulate: bool):
    user = django_user_model.objects.create_user(username="viewer", password="pw")
    if may_simulate:
        user.user_permissions.add(Permission.objects.get(codename="simulate_task"))
    client.force_login(user)
    return client


def test_without_the_permission_there_is_no_form_and_a_forged_post_is_refused(
        client, django_user_model, hello):
    viewer = _client(client, django_user_model, may_simulate=False)
    page = viewer.get("/tasks/hello/").content.decode()
    assert "dry-run-form" not in page and "Dry run" not in page
    response = viewer.post("/tasks/hello/simulate/", {"version": "1", "script": SCRIPT})
    assert response.status_code == 403


def test_a_signed_out_post_goes_to_the_login(client, hello):
    response = client.post("/tasks/hello/simulate/", {"version": "1", "script": SCRIPT})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_with_the_permission_the_dry_run_shows_its_path_and_history(
        client, django_user_model, hello):
    runner = _client(client, django_user_model, may_simulate=True)
    assert 'id="dry-run-form"' in runner.get("/tasks/hello/").content.decode()
    response = runner.post("/tasks/hello/simulate/", {"version": "1", "script": SCRIPT})
    page = response.content.decode()
    assert response.status_code == 200
    assert "data-simulated" in page and 'data-current="done" data-ended="true"' in page
    rows = response.context["dry_run"].transitions
    assert [(t["from_state"], t["to_state"], t["trigger"]) for t in rows] == [
        (None, "greeting", "start"), ("greeting", "shouting", "condition"),
        ("shouting", "pause", "condition"), ("pause", "done", "condition")]
    assert '<tr data-from="pause" data-to="done" data-trigger="condition" ' \
           'data-condition="wait">' in page
    assert "✓ succeeded</strong> in <code>done</code> after 2.0 virtual seconds" in page
    assert "HELLO ADA LOVELACE-BYRON!" in page  # the text history's data line
    assert Run.objects.count() == 0 and Transition.objects.count() == 0


def test_the_input_field_replaces_the_scripts_input(client, django_user_model, hello):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.post("/tasks/hello/simulate/",
                           {"version": "1", "script": SCRIPT, "input": '{"name": "Bo"}'})
    states = [t["to_state"] for t in response.context["dry_run"].transitions]
    assert states == ["greeting", "pause", "done"]


@pytest.mark.parametrize(("script", "input", "problem"), [
    ("input: [", "", "script:1:9: error: YAML syntax error"),
    (SCRIPT, "[1, 2]", "the input must be a JSON object"),
    (SCRIPT, "{nope", "JSON parse error"),
    (SCRIPT, '{"name": 7}', "input_schema: 7 is not of type &#x27;string&#x27;"),
])
def test_a_bad_script_or_input_is_a_400_with_the_problem_on_the_page(
        client, django_user_model, hello, script, input, problem):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.post("/tasks/hello/simulate/",
                           {"version": "1", "script": script, "input": input})
    assert response.status_code == 400
    assert problem in response.content.decode()
    assert response.context["dry_run"].result is None


def test_hostile_script_text_is_escaped_when_shown_again(client, django_user_model, hello):
    runner = _client(client, django_user_model, may_simulate=True)
    hostile = "</textarea><script>alert(1)</script>"
    page = runner.post("/tasks/hello/simulate/", {"version": "1", "script": hostile}
                       ).content.decode()
    assert "<script>alert(1)" not in page and "&lt;/textarea&gt;&lt;script&gt;" in page


@override_settings(ASYNC_STATES={"API_MAX_BODY_BYTES": 1000})
def test_a_form_past_the_body_bound_is_a_413(client, django_user_model, hello):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.post("/tasks/hello/simulate/",
                           {"version": "1", "script": SCRIPT + "#" * 2000})
    assert response.status_code == 413 and b"API_MAX_BODY_BYTES" in response.content


def test_an_unknown_version_is_a_404(client, django_user_model, hello):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.post("/tasks/hello/simulate/", {"version": "9", "script": SCRIPT})
    assert response.status_code == 404
