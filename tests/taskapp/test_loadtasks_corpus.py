"""``loadtasks --check`` on the invalid corpus prints each file's expected message with its
file:line:column, and passes on the shipped task definitions."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests" / "taskdefs" / "invalid").glob("*.yaml"))


def _check(*paths: str) -> tuple[str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command("loadtasks", *paths, "--check", stdout=out, stderr=err)
        status = 0
    except (CommandError, SystemExit):
        status = 1
    return out.getvalue() + err.getvalue(), status


@pytest.mark.django_db
def test_check_prints_the_expected_message_for_every_corpus_file(monkeypatch):
    monkeypatch.chdir(ROOT)
    output, status = _check("tests/taskdefs/invalid")
    missing = []
    for path in CORPUS:
        tag, _, expected = path.read_text().splitlines()[0].partition(": ")
        line_col, _, message = expected.partition(": ")
        severity = "warning" if tag.endswith("warning") else "error"
        wanted = f"{path.relative_to(ROOT)}:{line_col}: {severity}: {message}"
        if wanted not in output:
            missing.append(wanted)
    assert not missing, "\n".join(missing[:5])
    assert status == 1


@pytest.mark.django_db
def test_check_passes_on_the_shipped_taskdefs():
    output, status = _check(str(ROOT / "taskdefs"))
    assert status == 0, output
    assert "error" not in output.split("checked")[0]
