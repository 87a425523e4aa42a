"""Durations as task files write them: seconds as a number, or ``500ms``, ``30s``, ``1h30m``.

Owns the parsing and the short printing of durations; what a duration means (a timeout, a poll
interval, a deadline) is the parser's and the runner's business.
"""

from __future__ import annotations

import re
from datetime import timedelta

ACCEPTED_FORMS = "use seconds (30) or a form like 500ms, 30s, 5m, 2h, 1d, 1h30m"

# Units largest first; each may appear once, in this order: "2d12h", "1h30m", "1m30s500ms".
_PATTERN = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def parse_duration(value: object) -> timedelta:
    """Read a duration.

    Args:
        value: an int or float number of seconds (not a bool, not negative), or a string of
            unit parts such as ``500ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``, ``2d12h``.

    Returns:
        The duration.

    Raises:
        ValueError: with a message that names the accepted forms.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"bad duration {value!r}: {ACCEPTED_FORMS}")
    if isinstance(value, int | float):
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"bad duration {value!r}: a duration cannot be negative")
        return timedelta(seconds=value)
    match = _PATTERN.match(value.strip())
    if not value.strip() or match is None:
        raise ValueError(f"bad duration '{value}': {ACCEPTED_FORMS}")
    millis = sum(int(amount) * _UNITS[unit] for unit, amount in match.groupdict().items() if amount)
    return timedelta(milliseconds=millis)


def format_duration(duration: timedelta) -> str:
    """The shortest form ``parse_duration`` reads back: ``1h30m``, ``500ms``, ``0s``."""
    millis = round(duration.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        amount, millis = divmod(millis, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
