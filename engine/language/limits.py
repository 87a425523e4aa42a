"""How big a task file may be: the reader's bounds, so that any text ends in bounded time.

Task files come from operators, from ``loadtasks`` and from anyone allowed to call the
validation endpoint; a few hundred hostile bytes (nested aliases, deep flow nesting, a
20-digit duration) must end in a problem, not in a hang, a ``RecursionError`` or an
``OverflowError``. This module owns the numbers and the wording of the problems that cite
them; ``yamlnodes`` enforces the structural bounds while it reads, ``reading`` and ``parser``
the value and count bounds. A deployment sets them through ``ASYNC_STATES``
(``taskapp.conf``), which passes them in; the defaults here match that module's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta

# The widest whole number a task file may write: what a signed 64-bit column, JSON readers in
# other languages and PostgreSQL's bigint all hold.
MAX_INTEGER = 2**63 - 1
# The longest duration a task file may write. Python's timedelta stops at 999,999,999 days; a
# run's wake-up time is now + the duration, so the bound must leave datetime's range (year
# 9999) far away: 100 years does.
MAX_DURATION = timedelta(days=36_525)
# The most problems one reading reports: enough to fix a file by, and a bound on the memory a
# file written to produce one problem per value can take.
MAX_PROBLEMS = 200
# The deepest nesting a deployment may allow (see ReaderLimits.__post_init__).
MAX_DEPTH_CEILING = 200


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """The bounds one reading of a task file respects (``ASYNC_STATES`` keys in brackets).

    Attributes:
        max_source_bytes: the file's size in UTF-8 bytes [TASKFILE_MAX_BYTES].
        max_depth: how deeply mappings and sequences may nest [TASKFILE_MAX_DEPTH].
        max_nodes: values in the document, each alias counted as the whole value it
            repeats [TASKFILE_MAX_NODES].
        max_aliases: ``*alias`` references in the file [TASKFILE_MAX_ALIASES].
        max_key_chars: the length of one mapping key [TASKFILE_MAX_KEY_CHARS].
        max_string_chars: the length of one text value [TASKFILE_MAX_STRING_CHARS].
        max_states: states in one task [TASKFILE_MAX_STATES].
        max_instructions: instructions in one state [TASKFILE_MAX_INSTRUCTIONS].
        max_transitions: transitions of one state [TASKFILE_MAX_TRANSITIONS].
        max_templates: templates and predicates in one task, each parsed at load time
            [TASKFILE_MAX_TEMPLATES].
        max_template_chars: their characters, all together [TASKFILE_MAX_TEMPLATE_CHARS].
    """

    max_source_bytes: int = 1_048_576
    max_depth: int = 64
    max_nodes: int = 10_000
    max_aliases: int = 1_000
    max_key_chars: int = 256
    max_string_chars: int = 100_000
    max_states: int = 1_000
    max_instructions: int = 100
    max_transitions: int = 100
    max_templates: int = 300
    max_template_chars: int = 30_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{SETTING_NAMES[item.name]} must be a positive whole number, "
                                 f"got {value!r}")
        if self.max_depth > MAX_DEPTH_CEILING:
            # Parsing walks values recursively (JSON Schema checks, templates): past this,
            # a deep value could overflow Python's stack instead of being refused.
            raise ValueError(f"TASKFILE_MAX_DEPTH must be at most {MAX_DEPTH_CEILING}, "
                             f"got {self.max_depth}")


# The ASYNC_STATES key of each limit, for messages that tell an operator what to raise.
SETTING_NAMES = {
    "max_source_bytes": "TASKFILE_MAX_BYTES",
    "max_depth": "TASKFILE_MAX_DEPTH",
    "max_nodes": "TASKFILE_MAX_NODES",
    "max_aliases": "TASKFILE_MAX_ALIASES",
    "max_key_chars": "TASKFILE_MAX_KEY_CHARS",
    "max_string_chars": "TASKFILE_MAX_STRING_CHARS",
    "max_states": "TASKFILE_MAX_STATES",
    "max_instructions": "TASKFILE_MAX_INSTRUCTIONS",
    "max_transitions": "TASKFILE_MAX_TRANSITIONS",
    "max_templates": "TASKFILE_MAX_TEMPLATES",
    "max_template_chars": "TASKFILE_MAX_TEMPLATE_CHARS",
}
DEFAULT_LIMITS = ReaderLimits()
assert set(SETTING_NAMES) == {f.name for f in fields(ReaderLimits)}


def over_limit(limits: ReaderLimits, name: str, what: str) -> str:
    """The problem message for ``what`` exceeding the limit ``name``.

    It names the limit, its value here, its default and the setting that changes it, so the
    author can shrink the file and an operator can decide to raise the bound.
    """
    value = getattr(limits, name)
    default = getattr(DEFAULT_LIMITS, name)
    return f"{what}: the limit is {value:,} ({SETTING_NAMES[name]}, default {default:,})"


def shorten(text: str, width: int = 60) -> str:
    """``text`` cut to ``width`` characters for a message: a problem never echoes a whole
    100,000-character value (and a value repeated by aliases never multiplies that)."""
    return text if len(text) <= width else f"{text[: width - 1]}…"
