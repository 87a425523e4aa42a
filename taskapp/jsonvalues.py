"""Which JSON values the database can store, and where a value that it cannot is.

PostgreSQL's ``jsonb`` refuses a string holding NUL (``\\u0000``) or a lone UTF-16 surrogate
(``\\ud800``), whether in a key or a value, with an error that reached clients as a 500; it
stores numbers exactly but SQLite's JSON functions read integers beyond 64 bits as floats, and
neither holds ``NaN`` or ``Infinity`` (``json.dumps`` writes them, PostgreSQL refuses them).
This module finds the first such value in a decoded JSON document and says where it is, as a
path in the API's error form (``input.items[2].name``), so the caller can refuse it by name.
The API's JSON parser runs it on every request body; the services run it on what other
callers (management commands) hand them.

It walks with an explicit stack, never recursion: the depth of a document is bounded by its
reader (the API's parser), not by the interpreter's stack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# NUL and every UTF-16 surrogate: a str holding one of these came from a lone ``\\udXXX``
# escape (a valid pair is decoded into one code point above U+FFFF).
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")

# 64-bit signed integers: what SQLite's JSON functions read as integers.
MAX_INTEGER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Where (``path``, empty for the document itself) and why a value cannot be stored."""

    path: str
    reason: str


def find_unstorable(value: Any, *, root: str = "", max_integer: int = MAX_INTEGER
                    ) -> Unstorable | None:
    """The first value under ``value`` that the database cannot store, or None.

    Args:
        value: a decoded JSON document (dicts, lists, str, int, float, bool, None).
        root: the path of ``value`` itself, prefixed to every path reported.
        max_integer: the largest magnitude of an integer.
    """
    for path, item in _walk(value, root):
        reason = _reason(item, max_integer)
        if reason:
            return Unstorable(path, reason)
    return None


def _walk(value: Any, root: str) -> Iterator[tuple[str, Any]]:
    """Every key and value under ``value`` with its path, depth first, without recursion."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                where = f"{path}.{key}" if path else str(key)
                yield where, _Key(key)
                stack.append((where, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))


class _Key(str):
    """A dict key, told apart from a string value only in messages."""


def _reason(item: Any, max_integer: int) -> str | None:
    if isinstance(item, str):
        return _string_reason(item)
    if isinstance(item, bool):
        return None
    if isinstance(item, int) and abs(item) > max_integer:
        return f"this integer is out of range: integers are limited to ±{max_integer}"
    if isinstance(item, float) and not math.isfinite(item):
        name = "NaN" if math.isnan(item) else ("-" if item < 0 else "") + "Infinity"
        return f"{name} is not a number JSON can hold (too large a number reads as Infinity)"
    return None


def _string_reason(text: str) -> str | None:
    found = _UNSTORABLE_CHARS.search(text)
    if found is None:
        return None
    what = "key" if isinstance(text, _Key) else "string"
    char = ord(found.group())
    name = "NUL (\\u0000)" if char == 0 else f"a lone surrogate (\\u{char:04x})"
    return f"a {what} holding {name} cannot be stored (at character {found.start() + 1})"
