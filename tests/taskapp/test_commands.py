"""The management commands: what they print, what they store, how they exit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from taskapp import models
from taskapp.services import run_advance

pytestmark = pytest.mark.django_db

TASK = """\
name: {name}
version: {version}
start_state: a
states:
  a:
    transitions:
      - to: b
  b:
    final: succeeded
"""
BROKEN = """\
name: broken
version: 1
start_state: nowhere
states:
  a:
    final: succeeded
"""


def run(*args, **options) -> tuple[str, str, int]:
    """Call a command; its stdout, stderr and exit status (a ``CommandError``'s returncode,
    with its message on stderr, as ``manage.py`` prints it)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err, **options)
        code = 0
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        code = exc.returncode
    return out.getvalue(), err.getvalue(), code


@pytest.fixture
def taskdir(tmp_path: Path) -> Path:
    (tmp_path / "nested").mkdir()
    (tmp_path / "one.yaml").write_text(TASK.format(name="one", version=1))
    (tmp_path / "nested" / "two.yml").write_text(TASK.format(name="two", version=1))
    (tmp_path / "notes.txt").write_text("not a task")
    return tmp_path


# --------------------------------------------------------------------------- loadtasks


def test_loadtasks_loads_then_reports_unchanged(taskdir):
    out, _, code = run("loadtasks", str(taskdir))
    assert code == 0
    assert out.splitlines()[-1] == "loaded 2, unchanged 0, refused 0, invalid 0"
    assert set(models.TaskDefinition.objects.values_list("name", flat=True)) == {"one", "two"}
    out, _, code = run("loadtasks", str(taskdir))
    assert (code, out.splitlines()[-1]) == (0, "loaded 0, unchanged 2, refused 0, invalid 0")


def test_loadtasks_refuses_a_changed_file_under_the_same_version(taskdir):
    run("loadtasks", str(taskdir))
    (taskdir / "one.yaml").write_text(TASK.format(name="one", version=1) + "# changed\n")
    out, err, code = run("loadtasks", str(taskdir))
    assert code == 1
    assert out.splitlines()[-1] == "loaded 0, unchanged 1, refused 1, invalid 0"
    assert "version 1 is already loaded with different content" in err


def test_loadtasks_prints_problems_with_file_line_and_column(taskdir):
    (taskdir / "broken.yaml").write_text(BROKEN)
    out, err, code = run("loadtasks", str(taskdir))
    assert code == 1
    assert out.splitlines()[-1] == "loaded 2, unchanged 0, refused 0, invalid 1"
    assert f"{taskdir / 'broken.yaml'}:3:" in err and ": error: " in err


def test_loadtasks_check_stores_nothing(taskdir):
    (taskdir / "broken.yaml").write_text(BROKEN)
    out, _, code = run("loadtasks", str(taskdir), check=True)
    assert code == 1
    assert out.splitlines()[-1].startswith("checked 3 files: 2 ok, 1 with errors, ")
    assert not models.TaskDefinition.objects.exists()
    (taskdir / "broken.yaml").unlink()
    out, _, code = run("loadtasks", str(taskdir), check=True)
    assert (code, out.splitlines()[-1]) == (0, "checked 2 files: 2 ok, 0 with errors, 0 warnings")


def test_loadtasks_names_a_missing_path(tmp_path):
    with pytest.raises(CommandError, match="nope.yaml: no such file or folder"):
        call_command("loadtasks", str(tmp_path / "nope.yaml"))


def test_loadtasks_loads_the_shipped_task_files_by_default():
    out, err, code = run("loadtasks")
    assert code == 0, err
    assert models.TaskDefinition.objects.filter(name="hello").exists()


# --------------------------------------------------------------------------- ensure_admin


def test_ensure_admin_creates_one_admin_with_a_random_password(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out, _, _ = run("ensure_admin", port="8765")
    assert out.startswith("Admin login: http://127.0.0.1:8765/admin/ user admin password ")
    password = out.split(" password ")[1].split()[0]
    assert len(password) >= 16
    assert get_user_model().objects.get(username="admin").check_password(password)
    again, _, _ = run("ensure_admin")
    assert again == "Admin login exists (user admin).\n"
    assert get_user_model().objects.count() == 1
    get_user_model().objects.all().delete()
    other = run("ensure_admin")[0].split(" password ")[1].split()[0]
    assert other != password


def test_ensure_admin_takes_names_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long chosen secret")
    out, _, _ = run("ensure_admin")
    assert "user ops password from DJANGO_SUPERUSER_PASSWORD" in out
    assert "a long chosen secret" not in out
    assert get_user_model().objects.get(username="ops").check_password("a long chosen secret")


# --------------------------------------------------------------------------- runs and events


def test_start_run_prints_the_id_and_show_run_the_history(greeter, no_dispatch):
    greeter()
    out, _, code = run("start_run", "greeter", input='{"name": "Ada"}', idempotency_key="k1")
    run_id = out.strip()
    assert code == 0 and models.Run.objects.get(pk=run_id).input == {"name": "Ada"}
    run_advance(run_id=run_id)
    out, _, _ = run("show_run", run_id)
    assert "status    waiting" in out and "state     resting" in out
    assert '"greeting": "Hello Ada"' in out
    assert "greet → resting  (condition: always)" in out
    assert "greet.set" in out or "attempts:" in out
    again, err, _ = run("start_run", "greeter", idempotency_key="k1")
    assert again.strip() == run_id and "existing run" in err


def test_start_run_reads_input_from_a_file(greeter, no_dispatch, tmp_path):
    greeter()
    (tmp_path / "in.json").write_text('{"name": "Bo"}')
    run_id = run("start_run", "greeter", input_file=str(tmp_path / "in.json"))[0].strip()
    assert models.Run.objects.get(pk=run_id).input == {"name": "Bo"}


@pytest.mark.parametrize("options, message", [
    ({"input": "{bad"}, "--input: not valid JSON"),
    ({"input_file": "/no/such.json"}, "--input-file: cannot read /no/such.json"),
    ({"task_version": 9}, "version 9 of task 'greeter' is not loaded"),
])
def test_start_run_errors_say_what_is_wrong(greeter, no_dispatch, options, message):
    greeter()
    with pytest.raises(CommandError, match=message):
        call_command("start_run", "greeter", stdout=io.StringIO(), **options)


def test_start_run_wait_gives_up_after_the_limit(greeter, no_dispatch):
    greeter()
    with pytest.raises(CommandError, match="is still pending after 0.3 s"):
        call_command("start_run", "greeter", wait=0.3, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_start_run_wait_follows_the_run_to_its_end(no_dispatch, tmp_path):
    (tmp_path / "t.yaml").write_text(TASK.format(name="quick", version=1))
    run("loadtasks", str(tmp_path))
    worker = threading.Thread(target=advance_first_run)
    worker.start()
    out, _, code = run("start_run", "quick", wait=10)
    worker.join()
    lines = out.splitlines()
    assert code == 0
    assert lines[1].endswith("∅ → a  (start)")
    assert lines[2].endswith("a → b  (condition: always)")
    assert lines[3:] == ["succeeded", "{}"]


def advance_first_run() -> None:
    """Play the cluster: advance the run as soon as the command has created it."""
    try:
        for _ in range(100):
            if (found := models.Run.objects.first()) is not None:
                run_advance(run_id=found.pk)
                return
            time.sleep(0.05)
    finally:
        connection.close()


def test_send_event_to_a_run_and_by_correlation(waiting_run):
    out, _, _ = run("send_event", "approved", run=str(waiting_run.pk), data='{"ok": true}',
                    key="e1", ttl=60)
    event = models.Event.objects.get(key="e1")
    assert out == f"event {event.pk} 'approved' sent\n"
    assert (event.run_id, event.payload) == (waiting_run.pk, {"ok": True})
    again, _, _ = run("send_event", "approved", run=str(waiting_run.pk), key="e1")
    assert "already sent" in again
    run("send_event", "shipped", correlation="order-7")
    assert models.Event.objects.get(name="shipped").correlation == "order-7"


def test_send_event_errors(waiting_run):
    with pytest.raises(CommandError, match="--data: not valid JSON"):
        call_command("send_event", "x", data="nope")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("send_event", "x", run="5f1c0e0e-0000-0000-0000-000000000000")


def test_cancel_and_redrive_run(waiting_run):
    out, _, _ = run("cancel_run", str(waiting_run.pk))
    assert out.startswith(f"cancel requested for run {waiting_run.pk}")
    run_advance(run_id=waiting_run.pk)
    with pytest.raises(CommandError, match="cannot cancel"):
        call_command("cancel_run", str(waiting_run.pk))
    out, _, _ = run("redrive_run", str(waiting_run.pk), state="greet")
    assert out == f"run {waiting_run.pk} redriven: running in greet\n"


def test_show_run_of_an_unknown_run():
    with pytest.raises(CommandError, match="run nope does not exist"):
        call_command("show_run", "nope")


def test_show_run_prints_json_that_parses(waiting_run):
    out = run("show_run", str(waiting_run.pk))[0]
    block = out.split("data:\n")[1].split("\n}")[0] + "\n}"
    assert json.loads(block) == {"greeting": "Hello Ada"}


SCHEMA_TASK = """\
name: typed
version: 1
start_state: a
input_schema:
  type: object
  required: [order_id]
  properties:
    total: {type: number, minimum: 0}
    items: {type: array}
states:
  a:
    final: succeeded
"""


def test_start_run_prints_every_input_schema_error(tmp_path, no_dispatch):
    (tmp_path / "typed.yaml").write_text(SCHEMA_TASK)
    run("loadtasks", str(tmp_path))
    with pytest.raises(CommandError) as caught:
        call_command("start_run", "typed", input='{"total": -1, "items": "x"}',
                     stdout=io.StringIO())
    assert str(caught.value).splitlines() == [
        "input rejected by the input_schema of task 'typed':",
        "  (root): 'order_id' is a required property",
        "  items: 'x' is not of type 'array'",
        "  total: -1 is less than the minimum of 0",
    ]
    assert not models.Run.objects.exists()


FINAL_TASK = """\
name: review
version: 1
start_state: pending
final_states: {approved: succeeded, rejected: failed}
states:
  pending:
    transitions:
      - to: approved
        subscribe: approve
      - to: rejected
        when: "true"
"""


def test_redrive_of_a_run_that_ended_in_a_final_state_asks_for_a_state(tmp_path, no_dispatch):
    (tmp_path / "review.yaml").write_text(FINAL_TASK)
    run("loadtasks", str(tmp_path))
    run_id = run("start_run", "review")[0].strip()
    run_advance(run_id=run_id)
    assert models.Run.objects.get(pk=run_id).status == "failed"
    with pytest.raises(CommandError) as caught:
        call_command("redrive_run", run_id)
    assert str(caught.value) == (
        f"cannot redrive run {run_id} without a state: it ended in the final state "
        "'rejected' (failed); name the state to resume in, e.g. 'pending', where it came "
        "from; one of pending")
    with pytest.raises(CommandError, match="to 'approved': that is a final state; one of"):
        call_command("redrive_run", run_id, state="approved")
    with pytest.raises(CommandError, match="to 'nowhere': that is not a state of its task"):
        call_command("redrive_run", run_id, state="nowhere")
    out, _, _ = run("redrive_run", run_id, state="pending")
    assert out == f"run {run_id} redriven: running in pending\n"


def test_redrive_of_a_succeeded_run_says_which_statuses_can_be(waiting_run):
    waiting_run.__class__.objects.filter(pk=waiting_run.pk).update(status="succeeded")
    with pytest.raises(CommandError) as caught:
        call_command("redrive_run", str(waiting_run.pk))
    assert str(caught.value) == (f"cannot redrive run {waiting_run.pk}: it is succeeded, "
                                 "not cancelled, failed or timed_out")


@pytest.mark.parametrize("args", [["help"], ["diffsettings", "--all"]])
def test_a_reader_that_goes_away_ends_a_command_quietly(args):
    """``manage.py show_run ID | head``: when the pipe closes, no traceback, status 141 (as a
    Unix tool killed by SIGPIPE). The reading end is closed before the command writes."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert (process.wait(timeout=60), err) == (141, "")


# --------------------------------------------------------------------------- graph


def test_graph_prints_svg_dot_or_mermaid_of_the_latest_or_a_given_version(greeter, tmp_path):
    import xml.etree.ElementTree as ET

    greeter()
    greeter(2)
    svg = _call_graph("greeter")
    assert ET.fromstring(svg).get("data-version") == "2"
    assert _call_graph("greeter", "--format", "dot").startswith('digraph "greeter v2" {')
    assert _call_graph("greeter", "--version", "1", "--format", "mermaid").startswith(
        "flowchart TD\n")
    target = tmp_path / "g.dot"
    assert "wrote" in _call_graph("greeter", "--format", "dot", "--output", str(target))
    assert target.read_text().startswith("digraph")


def test_graph_refuses_an_unknown_task_or_an_unwritable_file(greeter, tmp_path):
    from django.core.management.base import CommandError

    greeter()
    with pytest.raises(CommandError, match="task 'nope' is not loaded"):
        _call_graph("nope")
    with pytest.raises(CommandError, match="version 7 of task 'greeter' is not loaded"):
        _call_graph("greeter", "--version", "7")
    with pytest.raises(CommandError, match="--output: cannot write"):
        _call_graph("greeter", "--output", str(tmp_path / "missing" / "g.svg"))


def _call_graph(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("graph", *args, stdout=out)
    return out.getvalue()
