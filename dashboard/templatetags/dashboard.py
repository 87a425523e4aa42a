"""Filters the dashboard's templates share: JSON as JSON (never a Python repr) and durations
people read. Their output is plain text; the templates escape it like any other."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """``value`` as indented JSON: ``true``/``null`` and double quotes, as the API shows it."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@register.filter
def seconds(value: float | None) -> str:
    """Seconds as ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min`` or ``3 d 04 h``."""
    if value is None:
        return "–"
    return human_seconds(float(value))


def human_seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                      ("min", 60, "s", 1)):
        if whole >= size:
            return f"{whole // size} {unit} {(whole % size) // sub_size:02d} {sub}"
    return f"{value:.0f} s"  # pragma: no cover - every value >= 60 matched above


@register.filter
def time_since(start: datetime | None, end: datetime | None = None) -> str:
    """From ``start`` until ``end`` (now when there is none), as ``seconds`` says it: the
    first paint of a duration the page's script then keeps counting."""
    if start is None:
        return "–"
    return human_seconds(max(0.0, ((end or timezone.now()) - start).total_seconds()))
