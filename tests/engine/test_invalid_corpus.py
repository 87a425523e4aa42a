"""Every file in tests/taskdefs/invalid/ names, on its first line, the exact first problem."""

from pathlib import Path

import pytest

from engine.language import validate_text

CORPUS = Path(__file__).parent.parent / "taskdefs"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))


def _expectation(text: str) -> tuple[str, str]:
    first = text.splitlines()[0]
    tag, _, expected = first.partition(": ")
    assert tag in ("# expect", "# expect-warning"), f"first line must be '# expect: ...': {first}"
    return ("warning" if tag.endswith("warning") else "error"), expected


def test_corpus_is_large_enough():
    assert len(INVALID) >= 45


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_file_reports_expected_first_problem(path):
    text = path.read_text()
    severity, expected = _expectation(text)
    report = validate_text(text, str(path))
    found = [p for p in report.problems if p.severity == severity]
    assert found, f"no {severity} reported; problems: {[str(p) for p in report.problems]}"
    first = found[0]
    assert f"{first.line}:{first.column}: {first.message}" == expected
    assert str(first).startswith(f"{path}:{first.line}:{first.column}: {severity}: ")
    if severity == "error":
        assert report.task is None and not report.ok
    else:
        assert report.ok and report.task is not None


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_file_loads_without_problems(path):
    report = validate_text(path.read_text(), str(path))
    assert report.problems == ()
    assert report.task is not None
