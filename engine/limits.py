"""Size limits on what a run carries: its input, its data, event payloads and instruction
results.

A size is the byte length of the value's compact JSON encoding (UTF-8), which is what the
database stores and what every reader of the run loads. This module owns the measure and
the error; the runner checks data and results after each instruction, ``taskapp`` checks
input at start and payloads when an event is sent, and the defaults live in
``taskapp.conf`` (``MAX_INPUT_BYTES``, ``MAX_DATA_BYTES``, ``MAX_EVENT_BYTES``,
``MAX_RESULT_BYTES``).

Why bound them at all: a value the database refuses (PostgreSQL's jsonb stops near 256 MB)
fails every commit of the step that made it, and each retry of that step holds it in a
worker's memory again — a 300 MB string grew workers to several gigabytes.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import EngineError, RunErrorCode


class SizeLimitExceeded(EngineError):
    """A value is larger, JSON-encoded, than the limit that applies to it.

    ``what`` names the value (``run input``, ``run data``, ``event payload``, ``the result
    of instruction 'x'``), ``setting`` the limit to raise to let it through.
    """

    code = RunErrorCode.SIZE_LIMIT

    def __init__(self, what: str, size: int | None, limit: int, setting: str):
        self.what, self.size, self.limit, self.setting = what, size, limit, setting
        measured = "is nested too deeply to measure" if size is None else f"is {size:,} bytes"
        super().__init__(
            f"{what} {measured} as JSON; the limit is {limit:,} bytes ({setting})"
        )


def json_size(value: Any) -> int:
    """The byte length of ``value``'s compact JSON encoding.

    Non-JSON values (a ``datetime`` from a database row) count as their ``str``; lone
    surrogates count as the bytes they would take.

    Raises:
        RecursionError: ``value`` is nested deeper than Python's recursion limit.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def path_bytes(path: str) -> int:
    """At most how many bytes writing a value at dotted ``path`` adds to a document's JSON
    besides the value: each segment's key, quoted and escaped, a colon, a comma and the
    braces of a mapping it may create."""
    return sum(json_size(segment) + 4 for segment in path.split("."))


def check_size(value: Any, *, what: str, limit: int, setting: str) -> int:
    """``json_size(value)``, or ``SizeLimitExceeded`` past ``limit`` (0 or less: no limit).

    Raises:
        SizeLimitExceeded: too large, or nested too deeply to encode.
    """
    try:
        size = json_size(value)
    except RecursionError:
        raise SizeLimitExceeded(what, None, limit, setting) from None
    if 0 < limit < size:
        raise SizeLimitExceeded(what, size, limit, setting)
    return size
