"""``manage.py simulate``: dry runs of files and loaded tasks, ``--check`` of scripts kept
beside task files, ``--explore``; and docs/simulate.md, whose examples are run here."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from engine.language import load_text
from engine.simulation import parse_script, simulate
from engine.simulation.check import mismatches
from taskapp.management.commands.loadtasks import task_files
from taskapp.services import definition_load

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulate.md"
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in _FENCE.finditer(DOC.read_text()) if m["lang"] == lang]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("simulate", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The doc's task and script as files, the working directory."""
    task, script = blocks("yaml")[:2]
    (tmp_path / "refund.yaml").write_text(task)
    (tmp_path / "refund.sim.yaml").write_text(script)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "refund.yaml").write_text(task)
    (tmp_path / "tasks" / "refund.sim.yaml").write_text(script)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------- the doc


def test_the_docs_yaml_blocks_are_a_task_and_scripts_that_hold():
    task_text, *scripts = blocks("yaml")
    task = load_text(task_text, "simulate.md")
    assert len(scripts) == 2
    for text in scripts:
        script = parse_script(text, "simulate.md")
        result = simulate(task, script)
        assert mismatches(script.expect, result) == [], result.to_text()


def test_the_docs_generated_script_is_the_checkers(folder):
    report = json.loads(run("--explore", "refund.yaml", "--input",
                            '{"payment_id": "P-7", "amount": 25}', "--json"))
    (refunded,) = [f for f in report["ends"] if f["state"] == "refunded"]
    assert yaml.safe_load(blocks("yaml")[2]) == refunded["script"]


@pytest.mark.parametrize("index", range(3))
def test_the_docs_console_sessions_show_real_output(folder, index):
    session = blocks("console")[index]
    command, *shown = session.rstrip("\n").split("\n")
    args = shlex.split(command.removeprefix("$ .venv/bin/python manage.py simulate "))
    assert run(*args).rstrip("\n").split("\n") == shown


def test_the_doc_is_linked_from_the_readme_and_the_api_reference():
    root = DOC.parents[1]
    assert "docs/simulate.md" in (root / "README.md").read_text()
    assert "simulate.md" in (root / "docs" / "api.md").read_text()


# ---------------------------------------------------------------------------- the command


def test_a_loaded_task_is_simulated_by_name(db, folder):
    assert definition_load(text=(folder / "refund.yaml").read_text(),
                           source="refund.yaml").status == "loaded"
    out = json.loads(run("refund", "--script", "refund.sim.yaml", "--json"))
    assert (out["status"], out["state"], out["end"]) == ("succeeded", "refunded", "finished")
    assert [a["attempt"] for a in out["attempts"]] == [1, 2]


def test_the_input_option_replaces_the_scripts(folder):
    with pytest.raises(CommandError, match="input_schema: 'amount' is a required property"):
        run("refund.yaml", "--script", "refund.sim.yaml", "--input", '{"payment_id": "x"}')


def test_an_unknown_task_or_a_bad_script_is_a_clear_error(db, folder):
    with pytest.raises(CommandError, match="task 'nope' is not loaded"):
        run("nope", "--script", "refund.sim.yaml")
    (folder / "bad.sim.yaml").write_text("events: [{at: soon}]\n")
    with pytest.raises(CommandError, match=r"bad.sim.yaml:1:\d+: error: an event needs a name"):
        run("refund.yaml", "--script", "bad.sim.yaml")
    with pytest.raises(CommandError, match="--script FILE is needed"):
        run("refund.yaml")


def test_check_lists_every_mismatch_and_exits_non_zero(folder):
    (folder / "tasks" / "refund.refused.sim.yaml").write_text(
        "input: {payment_id: P-7, amount: 25}\n"
        "instructions: {open_case: {status: 201, body: {id: R-1}}}\n"
        "events: [{at: 1h, name: refund.refused, correlation: P-7}]\n"
        "expect: {status: succeeded, state: refunded}\n")
    (folder / "tasks" / "orphan.sim.yaml").write_text("expect: {status: succeeded}\n")
    with pytest.raises(CommandError) as raised:
        run("--check", "tasks")
    message = str(raised.value)
    assert "refund.refused.sim.yaml: status: expected succeeded, got failed" in message
    assert "refund.refused.sim.yaml: state: expected refunded, got refused" in message
    assert "orphan.sim.yaml: no task file orphan.yaml beside it" in message
    assert raised.value.returncode == 1


def test_loadtasks_skips_the_scripts_beside_task_files(folder):
    assert [p.name for p in task_files([str(folder / "tasks")])] == ["refund.yaml"]


def test_explore_reports_stuck_ways_as_json(folder):
    (folder / "stuck.yaml").write_text(
        "name: stuck\nversion: 1\nstart_state: w\nstates:\n"
        "  w: {transitions: [{to: done, subscribe: {event: go}}]}\n  done: {final: succeeded}\n")
    report = json.loads(run("--explore", "stuck.yaml", "--json"))
    (stuck,) = report["stuck"]
    assert (stuck["kind"], stuck["state"], stuck["confirmed"]) == ("unsent_event", "w", True)
    assert stuck["script"]["expect"] == {"status": "waiting", "state": "w"}


def test_the_scripts_kept_beside_the_shipped_tasks_hold():
    root = DOC.parents[1]
    scripts = sorted(path.name for path in (root / "taskdefs").glob("*.sim.yaml"))
    tasks = {path.stem for path in (root / "taskdefs").glob("*.yaml")
             if not path.name.endswith(".sim.yaml")}
    assert tasks == {name.split(".")[0] for name in scripts}  # every shipped task has one
    kept = len(scripts)
    assert kept >= 8
    assert f"checked {kept} script(s): {kept} ok, 0 failed" in run("--check",
                                                                   str(root / "taskdefs"))
