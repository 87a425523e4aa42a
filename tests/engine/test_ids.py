"""Run ids are UUID version 7: they sort by the millisecond they were made in."""

from __future__ import annotations

import time
import uuid

from engine.ids import time_ordered_uuid


def test_is_an_rfc_9562_version_7_uuid():
    made = time_ordered_uuid()
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert uuid.UUID(str(made)) == made


def test_carries_the_unix_milliseconds_in_its_first_48_bits():
    before = time.time_ns() // 1_000_000
    made = time_ordered_uuid()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after
    assert time_ordered_uuid(now_ms=1_796_000_000_123).int >> 80 == 1_796_000_000_123


def test_ids_of_later_milliseconds_sort_after_earlier_ones():
    ids = [time_ordered_uuid(now_ms=ms) for ms in range(1_000, 3_000)]
    assert ids == sorted(ids)
    assert str(ids[0]) < str(ids[-1])  # as text too: PostgreSQL and SQLite compare it so


def test_ids_of_one_millisecond_differ():
    ids = {time_ordered_uuid(now_ms=42) for _ in range(10_000)}
    assert len(ids) == 10_000
