"""Durations as task files write them: seconds as a number, or ``500ms``, ``30s``, ``1h30m``.

Owns the parsing and the short printing of durations; what a duration means (a timeout, a poll
interval, a deadline) is the parser's and the runner's business.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from engine.language.limits import MAX_DURATION, shorten

ACCEPTED_FORMS = "use seconds (30) or a form like 500ms, 30s, 5m, 2h, 1d, 1h30m"

# Units largest first; each may appear once, in this order: "2d12h", "1h30m", "1m30s500ms".
_PATTERN = re.compile(
    r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?$"
)
_UNITS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_MAX_MILLIS = MAX_DURATION // timedelta(milliseconds=1)
# No amount of any unit within MAX_DURATION has more digits than this (36,525 days is
# 3,155,760,000,000 ms): longer amounts are refused before int() reads them.
_MAX_DIGITS = len(str(_MAX_MILLIS))
_TOO_LONG = "a duration may be at most 100 years (36525d)"


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
        raise ValueError(f"bad duration {shorten(repr(value))}: {ACCEPTED_FORMS}")
    if isinstance(value, int | float):
        return _seconds(value)
    match = _PATTERN.match(value.strip())
    if not value.strip() or match is None:
        raise ValueError(f"bad duration '{shorten(value)}': {ACCEPTED_FORMS}")
    amounts = {unit: amount for unit, amount in match.groupdict().items() if amount}
    if any(len(amount.lstrip("0")) > _MAX_DIGITS for amount in amounts.values()):
        raise ValueError(f"duration '{shorten(value)}' is too long: {_TOO_LONG}")
    millis = sum(int(amount) * _UNITS[unit] for unit, amount in amounts.items())
    if millis > _MAX_MILLIS:
        raise ValueError(f"duration '{shorten(value)}' is too long: {_TOO_LONG}")
    return timedelta(milliseconds=millis)


def _seconds(value: int | float) -> timedelta:
    """A number of seconds, checked before ``timedelta`` sees it (which raises
    ``OverflowError`` past 999,999,999 days)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"bad duration {value!r}: a duration must be a finite number")
    if value < 0:
        raise ValueError(f"bad duration {shorten(repr(value))}: a duration cannot be negative")
    if value > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {shorten(repr(value))} is too long: {_TOO_LONG}")
    return timedelta(seconds=value)


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
