"""YAML reading: text to a tree of ``Node`` values that remember where they were written.

This module owns the YAML dialect of task files: one document, PyYAML's safe loader, booleans
only as ``true``/``false`` (so states called ``on``, ``off``, ``yes`` or ``no`` stay strings),
no timestamps (dates stay strings, so parsed definitions stay JSON), and duplicate keys refused.
It reads within ``ReaderLimits``: the size here, before PyYAML sees the text; depth, nodes,
aliases and lengths in ``composer``, which builds the tree; scalar values in ``scalars``. Any
text ends in a tree or in problems. It knows nothing of the task vocabulary;
``engine.language.parser`` gives the tree its meaning.
"""

from __future__ import annotations

import re

import yaml

from engine.errors import Problem
from engine.language.composer import Composer, Refused
from engine.language.limits import DEFAULT_LIMITS, ReaderLimits, over_limit
from engine.language.nodes import MarkIndex, Node, join

__all__ = ["MarkIndex", "Node", "join", "read_yaml", "source_size", "too_big"]


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans and without implicit timestamps."""


_TaskLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TaskLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_yaml(
    text: str, source: str = "<string>", limits: ReaderLimits = DEFAULT_LIMITS
) -> tuple[Node | None, list[Problem]]:
    """Compose one YAML document into a ``Node`` tree, within ``limits``.

    Args:
        text: the YAML source.
        source: a file name or label, carried into every ``Mark`` and ``Problem``.
        limits: the size, depth, node, alias and length bounds to read within.

    Returns:
        The root node (``None`` when the text is empty, not valid YAML or over a structural
        limit) and the problems found: a syntax error, more than one document, unsupported
        tags, duplicate keys, values out of range, a limit exceeded.
    """
    too_big = _size_problem(text, source, limits)
    if too_big is not None:
        return None, [too_big]
    try:
        loader = _TaskLoader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        return None, [_reader_problem(exc, text, source)]
    composer = Composer(loader, source, limits)
    try:
        root = composer.single_document()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, source)]
    except Refused as exc:
        return None, [exc.problem]
    finally:
        loader.dispose()
    if root is None:
        return None, [_problem(source, 1, 1, "", _EMPTY)]
    return root, composer.problems


_EMPTY = "the file is empty; a task needs at least name, version, start_state and states"


def source_size(text: str) -> int:
    """``text``'s size in UTF-8 bytes (a lone surrogate, which YAML refuses later, counts 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


def _size_problem(text: str, source: str, limits: ReaderLimits) -> Problem | None:
    # Every character is at least one byte: a text longer than the limit is over it without
    # encoding a copy of it.
    if len(text) > limits.max_source_bytes:
        return _problem(source, 1, 1, "", too_big(limits, len(text), True))
    size = source_size(text)
    if size > limits.max_source_bytes:
        return _problem(source, 1, 1, "", too_big(limits, size, False))
    return None


def too_big(limits: ReaderLimits, size: int, at_least: bool) -> str:
    """The message for a file of ``size`` bytes (``at_least``: or more) over the size limit."""
    what = f"more than {limits.max_source_bytes:,}" if at_least else f"{size:,}"
    return over_limit(limits, "max_source_bytes", f"the file is too big ({what} bytes)")


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    reason = exc.problem or exc.context or "unreadable YAML"
    return _problem(source, line, column, "", f"YAML syntax error: {reason}")


def _reader_problem(exc: yaml.reader.ReaderError, text: str, source: str) -> Problem:
    """A character YAML does not allow (a control character, a stray byte): PyYAML reports
    it by offset, so turn that into a line and column."""
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return _problem(source, line, column, "", f"character #x{code:04x} is not allowed in YAML; "
                    "remove it or quote it as an escape (\\x..) in a double-quoted string")


def _problem(source: str, line: int, column: int, path: str, message: str) -> Problem:
    return Problem(source=source, line=line, column=column, path=path, message=message)
