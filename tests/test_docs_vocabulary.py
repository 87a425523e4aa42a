"""The docs list each vocabulary exactly as its enum defines it: run statuses, transition
triggers, poll outcomes, run error codes and the API's error codes. A member added or
removed without its line in the docs fails here."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from engine.errors import RunErrorCode, Severity
from engine.runs import PollOutcome, RunStatus, Trigger
from taskapp.errorcodes import ErrorCode

DOCS = Path(__file__).resolve().parents[1] / "docs"
CODE = re.compile(r"`([a-z_0-9]+)`")


def _section(doc: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of any level."""
    text = (DOCS / doc).read_text()
    start = text.index(f"{heading}\n")
    end = text.find("\n#", start + len(heading))
    return text[start:end if end != -1 else None]


def _table_column(doc: str, heading: str, first_cell: str, column: int) -> set[str]:
    """The backticked words of ``column`` in the table under ``heading`` whose header row
    starts with ``first_cell``."""
    lines = _section(doc, heading).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell} |"))
    words: set[str] = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        words |= set(CODE.findall(line.split("|")[column + 1]))
    return words


def _values(enum: type[StrEnum]) -> set[str]:
    return {str(member) for member in enum}


def test_the_run_statuses_table_lists_every_status():
    assert _table_column("engine.md", "## The life of a run", "status", 0) == _values(RunStatus)


def test_the_api_status_filter_lists_every_status():
    line = next(line for line in (DOCS / "api.md").read_text().splitlines()
                if line.startswith("| `status` | `pending`"))
    assert set(CODE.findall(line.split("|")[2])) == _values(RunStatus)


def test_the_history_lists_every_trigger():
    text = _section("engine.md", "## History and what is logged")
    listed = re.search(r"the trigger \(([^)]*)\)", text.replace("\n", " "))
    assert listed is not None
    assert set(CODE.findall(listed.group(1))) == _values(Trigger)


def test_the_poll_record_lists_every_outcome():
    text = _section("engine.md", "## Conditions and their race").replace("\n", " ")
    listed = re.search(r"its outcome: (.*?)\), however many", text)
    assert listed is not None
    assert set(CODE.findall(listed.group(1))) == _values(PollOutcome)


def test_the_run_error_codes_table_lists_every_code():
    assert _table_column("engine.md", "## Timeouts, retries, errors", "code", 0) == (
        _values(RunErrorCode))


def test_the_api_error_table_lists_every_code():
    assert _table_column("api.md", "## Errors", "status", 1) == _values(ErrorCode)


def test_the_validate_response_names_every_severity():
    text = (DOCS / "api.md").read_text().replace("\n", " ")
    listed = re.search(r"a problem's severity is (.*?),\s+and warnings", text)
    assert listed is not None
    assert set(CODE.findall(listed.group(1))) == _values(Severity)


@pytest.mark.parametrize(
    "enum", [RunStatus, Trigger, PollOutcome, RunErrorCode, ErrorCode, Severity])
def test_values_are_distinct_words(enum):
    assert all(re.fullmatch(r"[a-z_0-9]+", value) for value in _values(enum))
    assert len(_values(enum)) == len(list(enum))
