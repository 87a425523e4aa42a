"""``loadtasks`` on hostile input: problems, never a traceback; and on a database that was
never migrated, an error that says what to run."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "taskdefs" / "hostile"


def _expected(path: Path) -> str:
    data = path.read_bytes()
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return data.decode(encoding, "replace").lstrip("\ufeff").splitlines()[0].partition(": ")[2]


@pytest.mark.django_db
def test_check_reports_every_hostile_file_with_its_place(monkeypatch):
    monkeypatch.chdir(ROOT)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="task file\\(s\\) have errors"):
        call_command("loadtasks", "tests/taskdefs/hostile", "--check", stdout=out, stderr=err)
    missing = []
    for path in sorted(HOSTILE.glob("*.yaml")):
        expected = _expected(path)
        source = path.relative_to(ROOT).as_posix()
        if expected == "ok":
            wanted = f"checked   {source}"
            found = wanted in out.getvalue()
        else:
            line_col, _, message = expected.partition(": ")
            wanted = f"{source}:{line_col}: error: {message}"
            found = wanted in err.getvalue()
        if not found:
            missing.append(wanted)
    assert not missing, "\n".join(missing[:5])
    assert "Traceback" not in out.getvalue() + err.getvalue()


def test_check_on_a_database_never_migrated_says_to_migrate(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "loadtasks", "--check"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "CommandError: the database has no tables yet (it was never migrated): run " \
           "`python manage.py migrate` first" in done.stderr
