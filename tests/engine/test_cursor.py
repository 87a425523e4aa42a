"""The run cursor's stored form: rows written before ``RunCursor`` existed resume as they
were, and every cursor survives the trip through JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.cursor import LastError, Phase, RunCursor

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# Cursors exactly as the runner wrote them when the cursor was a dict with string keys.
OLD_ENTERED = {"phase": "instructions", "index": 0, "attempt": 0, "retry_at": None,
               "timeout_at": "2026-01-01T12:05:00+00:00"}
OLD_RETRYING = {"phase": "instructions", "index": 1, "attempt": 2,
                "retry_at": "2026-01-01T12:00:30+00:00", "timeout_at": None,
                "last_error": {"message": "HTTP 503", "error_class": "5xx"}}
OLD_RACING = {
    "phase": "conditions", "index": 2, "attempt": 0, "retry_at": None, "last_error": None,
    "timeout_at": None, "armed_at": "2026-01-01T12:00:01+00:00", "subscribed": True,
    "armed": {"0": {"due": "2026-01-01T13:00:00+00:00"},
              "1": {"attempts": 1, "first_at": "2026-01-01T12:00:01+00:00",
                    "last_at": "2026-01-01T12:00:02+00:00", "next_at": None,
                    "last_result": {"status": 200}, "last_error": ""}},
}


def test_an_old_instructions_cursor_reads_as_its_fields_and_writes_back_the_same():
    cursor = RunCursor.from_json(OLD_RETRYING)
    assert cursor.phase is Phase.INSTRUCTIONS and (cursor.index, cursor.attempt) == (1, 2)
    assert cursor.retry_at == T0 + timedelta(seconds=30) and cursor.timeout_at is None
    assert cursor.last_error == LastError("HTTP 503", "5xx") and cursor.armed is None
    assert cursor.to_json() == OLD_RETRYING
    assert RunCursor.from_json(OLD_ENTERED).to_json() == OLD_ENTERED


def test_an_old_racing_cursor_keeps_its_armed_conditions_by_index():
    cursor = RunCursor.from_json(OLD_RACING)
    assert cursor.phase is Phase.CONDITIONS and cursor.subscribed
    assert cursor.armed_at == T0 + timedelta(seconds=1)
    assert sorted(cursor.armed) == [0, 1] and cursor.armed[1]["attempts"] == 1
    # a cleared last error was stored as null; it is simply absent now
    assert cursor.to_json() == {k: v for k, v in OLD_RACING.items() if k != "last_error"}


def test_a_finished_or_unstarted_run_has_the_empty_cursor():
    assert RunCursor.from_json({}) == RunCursor.empty() == RunCursor.from_json(None)
    assert RunCursor.empty().is_empty and RunCursor.empty().to_json() == {}


def test_unknown_keys_survive_a_rewrite():
    raw = dict(OLD_ENTERED, future_field=[1, 2])
    assert RunCursor.from_json(raw).to_json() == raw


def test_entering_a_state_begins_its_instructions():
    cursor = RunCursor.entering(T0)
    assert cursor == RunCursor(phase=Phase.INSTRUCTIONS, timeout_at=T0)
    assert cursor.to_json() == dict(OLD_ENTERED, timeout_at=T0.isoformat())


moments = st.none() | st.datetimes(timezones=st.just(UTC))
armed_json = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                             max_size=3)


@given(
    phase=st.sampled_from(Phase), index=st.integers(0, 10**6), attempt=st.integers(0, 10**6),
    retry_at=moments, timeout_at=moments, armed_at=moments,
    last_error=st.none() | st.builds(LastError, st.text(max_size=20), st.text(max_size=8)),
    armed=st.none() | st.dictionaries(st.integers(0, 50), armed_json, max_size=4),
    subscribed=st.booleans(),
)
def test_every_cursor_survives_json(**fields):
    cursor = RunCursor(**fields)
    stored = json.loads(json.dumps(cursor.to_json()))
    assert RunCursor.from_json(stored) == cursor
