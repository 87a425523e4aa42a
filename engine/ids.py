"""Run ids that sort by creation time (UUID version 7, RFC 9562 §5.7).

Random (version 4) ids scatter every new run, and every new Transition keyed by it, across
the whole primary-key index: with a million runs in history each insert touches a cold leaf
page, and after each checkpoint writes that page whole to the WAL. Time-ordered ids put new
rows at the right edge of the index, where the pages are hot, so a commit costs the same with
10k or 10M runs behind it. The id reveals when the run was made, which ``created_at`` already
shows to anyone who can see the run.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def time_ordered_uuid(now_ms: int | None = None) -> uuid.UUID:
    """A version 7 UUID: 48 bits of Unix milliseconds, then 74 random bits.

    Ids made in the same millisecond are ordered at random among themselves; callers that
    order by id use ``created_at`` first, so that is enough.
    """
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    random_bits = int.from_bytes(os.urandom(10), "big")
    rand_a = random_bits >> 68  # 12 bits
    rand_b = random_bits & ((1 << 62) - 1)  # 62 bits
    value = (millis & ((1 << 48) - 1)) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b
    return uuid.UUID(int=value)
