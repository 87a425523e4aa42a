"""A task's versions side by side: the unified diff of one version's YAML against another,
computed with ``difflib`` and shown as lines the template escapes (the YAML is user text).

Each line says its kind in text too (the ``+``/``-`` sign a unified diff carries, and the
``ins``/``del`` element the template wraps it in), never by colour alone.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import StrEnum

# difflib compares lines in roughly quadratic time on the worst inputs; two sources of
# 5,000 lines each diff in well under a second, and no task we ship is a tenth of that.
# Past the bound the page says so and shows the YAML alone.
MAX_DIFF_LINES = 5_000
CONTEXT_LINES = 3


class LineKind(StrEnum):
    HEADER = "header"  # --- and +++: which versions are compared
    HUNK = "hunk"  # @@ -a,b +c,d @@: where the following lines are
    ADDED = "added"
    REMOVED = "removed"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: LineKind
    text: str  # the line as a unified diff prints it, sign included


@dataclass(frozen=True, slots=True)
class VersionDiff:
    old: int
    new: int
    lines: tuple[DiffLine, ...]
    too_long: bool = False

    @property
    def added(self) -> int:
        return sum(1 for line in self.lines if line.kind is LineKind.ADDED)

    @property
    def removed(self) -> int:
        return sum(1 for line in self.lines if line.kind is LineKind.REMOVED)


def version_diff(*, name: str, old: int, old_source: str, new: int,
                 new_source: str) -> VersionDiff:
    """The unified diff of ``old_source`` (version ``old``) to ``new_source``; no lines when
    they are equal, ``too_long`` (and no lines) past ``MAX_DIFF_LINES`` on either side."""
    before, after = old_source.splitlines(), new_source.splitlines()
    if max(len(before), len(after)) > MAX_DIFF_LINES:
        return VersionDiff(old, new, (), too_long=True)
    raw = difflib.unified_diff(before, after, f"{name} v{old}", f"{name} v{new}",
                               n=CONTEXT_LINES, lineterm="")
    # The two header lines come first, once: a removed YAML line "-- x" reads "--- x" too.
    return VersionDiff(old, new, tuple(
        DiffLine(LineKind.HEADER if i < 2 else _kind(line), line) for i, line in enumerate(raw)))


def _kind(line: str) -> LineKind:
    if line.startswith("@@"):
        return LineKind.HUNK
    if line.startswith("+"):
        return LineKind.ADDED
    if line.startswith("-"):
        return LineKind.REMOVED
    return LineKind.SAME
