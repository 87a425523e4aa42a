"""Every file in tests/taskdefs/hostile/ ends, in bounded time and memory, in the problem its
first line names (``# expect: LINE:COLUMN: message``, or ``# expect: ok``).

The files are what an attacker's campaign found to crash or hang the reader: nested aliases
("billion laughs", 6 to 9 levels), recursive aliases, nesting 10,000 deep in flow and block
style, 20-digit and 5,000-digit numbers, giant strings and keys, NULs, byte-order marks,
control characters, bytes that are not UTF-8. The bounds are the task-file campaign's
(docs/reliability.md): 1 s of CPU and 200 MB per file (CPU time, not wall time, so that a
busy machine does not fail the test).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from engine.language import validate_file

HOSTILE = sorted((Path(__file__).parent.parent / "taskdefs" / "hostile").glob("*.yaml"))
CPU_SECONDS = 1.0
PEAK_BYTES = 200 * 1024 * 1024


def expectation(path: Path) -> str:
    """The text after ``# expect: `` on the file's first line, in whatever encoding it has."""
    data = path.read_bytes()
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    first = data.decode(encoding, "replace").lstrip("\ufeff").splitlines()[0]
    tag, _, expected = first.partition(": ")
    assert tag == "# expect", f"first line must be '# expect: ...': {first[:80]}"
    return expected


def test_corpus_covers_the_attacks():
    names = {path.stem for path in HOSTILE}
    assert len(HOSTILE) >= 40
    assert {f"billion_laughs_{n}" for n in (6, 7, 8, 9)} <= names
    assert {"recursive_alias", "flow_nesting_10000", "block_sequence_nesting_10000",
            "duration_20_digits", "integer_5000_digits", "giant_string", "nul",
            "off_state_with_bom", "utf16", "control_character"} <= names


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_hostile_file_ends_in_its_expected_problem(path):
    expected = expectation(path)
    started = time.process_time()
    report = validate_file(path)
    spent = time.process_time() - started
    if expected == "ok":
        assert report.ok and report.task is not None, [str(p) for p in report.problems]
    else:
        assert report.errors, "no error reported"
        first = report.errors[0]
        assert f"{first.line}:{first.column}: {first.message}" == expected
        assert str(first).startswith(f"{path}:{first.line}:{first.column}: error: ")
        assert report.task is None
    assert spent < CPU_SECONDS, f"{spent:.2f}s of CPU"


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_hostile_file_stays_within_memory(path):
    tracemalloc.start()
    try:
        validate_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, f"{peak / 1e6:.0f} MB"
