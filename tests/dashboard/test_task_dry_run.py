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


# Scripts kept beside task files in TASKDEFS_DIR, offered on the task page.

HOSTILE = "hello.<img src=x onerror=alert(1)>.sim.yaml"  # a file name is text too: escaped


@pytest.fixture
def taskdir(tmp_path, hello):
    """``hello.yaml`` with three scripts (one with an expect that is not met, one with a
    hostile name), a file ``greet.yaml`` that also holds task ``hello``, another task with its
    own script, an orphan script, a task file that is not valid with its script, and a file
    outside the folder."""
    folder = tmp_path / "taskdefs"
    (folder / "more").mkdir(parents=True)
    (folder / "hello.yaml").write_text(HELLO)
    (folder / "hello.sim.yaml").write_text(SCRIPT)
    (folder / "hello.quiet.sim.yaml").write_text(
        "input: {name: Bo}\nexpect: {status: succeeded, state: shouting, data: {loud: true}}\n")
    (folder / HOSTILE).write_text("description: </textarea><script>alert(1)</script>\n")
    (folder / "more" / "greet.yaml").write_text(HELLO)
    (folder / "more" / "greet.sim.yaml").write_text("input: {name: Cy}\n")
    (folder / "other.yaml").write_text(HELLO.replace("name: hello", "name: other"))
    (folder / "other.sim.yaml").write_text("input: {name: Other}\n")
    (folder / "orphan.sim.yaml").write_text("input: {}\n")
    (folder / "broken.yaml").write_text("name: hello\nstates: [\n")  # not valid: no task
    (folder / "broken.sim.yaml").write_text("input: {}\n")
    (tmp_path / "settings.py").write_text("SECRET_KEY = 'not for the page'\n")
    with override_settings(ASYNC_STATES={"TASKDEFS_DIR": str(folder)}):
        yield folder


def test_the_task_page_lists_the_scripts_paired_with_its_task(
        client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.get("/tasks/hello/")
    names = [k.name for k in response.context["kept_scripts"]]
    assert names == [HOSTILE, "hello.quiet.sim.yaml", "hello.sim.yaml",
                     "more/greet.sim.yaml"]
    page = response.content.decode()
    assert 'id="kept-scripts-form"' in page
    assert '<option value="hello.&lt;img src=x onerror=alert(1)&gt;.sim.yaml">' in page
    assert "<img src=x" not in page
    assert "other.sim.yaml" not in page and "orphan.sim.yaml" not in page
    assert "broken.sim.yaml" not in page


def test_without_kept_scripts_there_is_no_choice(client, django_user_model, hello, tmp_path):
    runner = _client(client, django_user_model, may_simulate=True)
    with override_settings(ASYNC_STATES={"TASKDEFS_DIR": str(tmp_path / "none")}):
        page = runner.get("/tasks/hello/").content.decode()
    assert 'id="dry-run-form"' in page and 'id="kept-scripts-form"' not in page


def test_choosing_a_kept_script_fills_the_form_and_shows_its_expect(
        client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.get("/tasks/hello/", {"version": "1", "script": "hello.sim.yaml"})
    assert response.status_code == 200
    dry_run = response.context["dry_run"]
    assert dry_run.script == SCRIPT and dry_run.kept == "hello.sim.yaml"
    assert dry_run.result is None
    page = response.content.decode()
    assert "input: {name: Ada Lovelace-Byron}" in page  # in the textarea
    assert '<option value="hello.sim.yaml" selected>' in page
    assert '<input type="hidden" name="kept" value="hello.sim.yaml">' in page
    assert "expects status <code>succeeded</code> · state <code>done</code>" in page


def test_a_kept_scripts_expect_is_met_or_says_what_differed(
        client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    text = runner.get("/tasks/hello/", {"script": "hello.sim.yaml"}).context["dry_run"].script
    met = runner.post("/tasks/hello/simulate/",
                      {"version": "1", "script": text, "kept": "hello.sim.yaml"})
    assert met.context["dry_run"].differences == []
    assert "✓ met" in met.content.decode()
    quiet = runner.get("/tasks/hello/", {"script": "hello.quiet.sim.yaml"})
    missed = runner.post("/tasks/hello/simulate/", {
        "version": "1", "script": quiet.context["dry_run"].script, "kept": "<i>forged</i>"})
    assert missed.context["dry_run"].differences == [
        "state: expected shouting, got done", "data.loud: expected True, got False"]
    page = missed.content.decode()
    assert "✗ not met" in page and "state: expected shouting, got done" in page
    assert "<i>forged" not in page and "&lt;i&gt;forged&lt;/i&gt;" in page


def test_a_kept_scripts_text_is_escaped_in_the_form(client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    page = runner.get("/tasks/hello/", {"script": HOSTILE}).content.decode()
    assert "<script>alert(1)" not in page and "&lt;/textarea&gt;&lt;script&gt;" in page


@pytest.mark.parametrize("name", [
    "../settings.py", "..%2Fsettings.py", "../taskdefs/hello.sim.yaml", "./hello.sim.yaml",
    "more/../hello.sim.yaml", "hello.sim.yaml/", "greet.sim.yaml", "other.sim.yaml",
    "orphan.sim.yaml", "broken.sim.yaml", "hello.yaml", "", "hello.sim.yaml\x00",
    "HELLO.SIM.YAML",
])
def test_a_name_not_among_the_kept_scripts_is_a_404(client, django_user_model, taskdir, name):
    runner = _client(client, django_user_model, may_simulate=True)
    response = runner.get("/tasks/hello/", {"script": name})
    assert response.status_code == 404
    assert b"not for the page" not in response.content


def test_an_absolute_path_is_a_404_even_to_a_kept_script(
        client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    for name in (str(taskdir / "hello.sim.yaml"), str(taskdir.parent / "settings.py")):
        assert runner.get("/tasks/hello/", {"script": name}).status_code == 404


def test_a_raw_encoded_traversal_is_a_404(client, django_user_model, taskdir):
    runner = _client(client, django_user_model, may_simulate=True)
    for query in ("script=..%2Fsettings.py", "script=%2E%2E/settings.py",
                  "script=..%252Fsettings.py", "script=more%2Fgreet.sim.yaml%2F.."):
        assert runner.get(f"/tasks/hello/?{query}").status_code == 404


def test_another_tasks_script_is_a_404_on_this_page_and_listed_on_its_own(
        client, django_user_model, taskdir):
    assert definition_load(text=HELLO.replace("name: hello", "name: other"),
                           source="other.yaml").status == "loaded"
    runner = _client(client, django_user_model, may_simulate=True)
    assert runner.get("/tasks/hello/", {"script": "other.sim.yaml"}).status_code == 404
    response = runner.get("/tasks/other/", {"script": "other.sim.yaml"})
    assert response.status_code == 200 and "input: {name: Other}" in response.content.decode()


def test_without_the_permission_no_kept_script_shows_and_choosing_one_is_refused(
        client, django_user_model, taskdir):
    viewer = _client(client, django_user_model, may_simulate=False)
    page = viewer.get("/tasks/hello/")
    assert page.context["kept_scripts"] == []
    assert "hello.sim.yaml" not in page.content.decode()
    for name in ("hello.sim.yaml", "../settings.py", "nope"):
        assert viewer.get("/tasks/hello/", {"script": name}).status_code == 403


def test_a_signed_out_choice_goes_to_the_login(client, taskdir):
    response = client.get("/tasks/hello/", {"script": "hello.sim.yaml"})
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_kept_script_past_the_body_bound_is_not_read(client, django_user_model, taskdir):
    (taskdir / "hello.sim.yaml").write_text(SCRIPT + "#" * 2000)
    runner = _client(client, django_user_model, may_simulate=True)
    with override_settings(ASYNC_STATES={"TASKDEFS_DIR": str(taskdir),
                                         "API_MAX_BODY_BYTES": 1000}):
        response = runner.get("/tasks/hello/", {"script": "hello.sim.yaml"})
    assert response.context["dry_run"].script == ""
    assert "larger than 1000 bytes (API_MAX_BODY_BYTES)" in response.content.decode()
