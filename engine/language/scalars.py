"""YAML scalars to JSON values: the tags a task file may use, and the ranges they must keep.

A parsed definition is stored as JSON (PostgreSQL ``jsonb``), so a scalar becomes a string,
a whole number, a finite float, a boolean or null, and nothing else: no bytes (``!!binary``),
no datetimes (``!!timestamp``), no infinities. Whole numbers stay within ``MAX_INTEGER`` and
their text is measured before Python converts it, so a 5,000-digit number is a problem and not
a ``ValueError`` from ``int()``. ``yamlnodes`` decides where scalars go; this module only
turns one scalar event into a value or a reason.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from engine.language.limits import MAX_INTEGER, shorten

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
_JSON_TAGS = frozenset({STR, INT, FLOAT, "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"})
# The longest text of a whole number worth converting: MAX_INTEGER has 19 digits; binary
# (0b...), underscores and sexagesimal (1:30:00) forms are longer but not by 5x.
_MAX_NUMBER_CHARS = 100


def scalar_tag(loader: yaml.SafeLoader, event: yaml.ScalarEvent) -> str:
    """The tag of ``event``: as written, or as the loader's implicit resolvers decide."""
    if event.tag is None or event.tag == "!":
        return loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    return event.tag


def scalar_value(loader: yaml.SafeLoader, event: yaml.ScalarEvent) -> tuple[Any, str | None]:
    """The JSON value of one scalar, or ``(None, reason)`` when it has none.

    Args:
        loader: the loader whose resolvers and constructors define the dialect.
        event: a scalar event from that loader's parser.

    Returns:
        ``(value, None)``, or ``(None, message)`` for an unsupported tag, text that its tag
        cannot read (``!!int abc``), a whole number beyond ``MAX_INTEGER`` or a float that is
        not finite.
    """
    tag = scalar_tag(loader, event)
    if tag == STR:
        return event.value, None
    if tag not in _JSON_TAGS:
        return None, f"unsupported YAML: the tag '{shorten(tag)}' is not allowed"
    text = shorten(event.value)
    if tag in (INT, FLOAT) and len(event.value) > _MAX_NUMBER_CHARS:
        return None, f"the number '{text}' is too long; {_RANGE}"
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        value = loader.yaml_constructors[tag](loader, node)
    except (yaml.YAMLError, ValueError, KeyError, IndexError, ArithmeticError):
        # PyYAML's constructors trust their resolvers: an explicit `!!int` on empty text
        # raises IndexError, `!!bool maybe` KeyError, `!!float x` ValueError.
        return None, f"'{text}' is not a valid {tag.rsplit(':', 1)[-1]}"
    return _in_range(value, text)


_RANGE = f"whole numbers must lie within ±{MAX_INTEGER:,} and other numbers must be finite"


def _in_range(value: Any, text: str) -> tuple[Any, str | None]:
    if isinstance(value, bool) or value is None:
        return value, None
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return None, f"the number '{text}' is too large; {_RANGE}"
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"the number '{text}' is not finite; {_RANGE} (quote it to write text)"
    return value, None
