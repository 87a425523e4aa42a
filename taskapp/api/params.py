"""Query parameters parsed strictly: ``str.isdigit`` accepts ``²`` and ``int`` then refuses
it (a 500), ``int`` accepts Arabic-Indic digits, spaces, signs and underscores, and refuses
4,300 digits and more with ``ValueError``. A whole number here is 1 to 10 ASCII digits."""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError

_DIGITS = re.compile(r"[0-9]{1,10}")


def whole_number(text: str, *, name: str, low: int, high: int) -> int:
    """``text`` as an int from ``low`` to ``high``; a 400 naming ``name`` otherwise."""
    if _DIGITS.fullmatch(text) and low <= int(text) <= high:
        return int(text)
    raise ValidationError({name: [f"a whole number from {low} to {high} (ASCII digits)"]})
