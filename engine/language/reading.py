"""Typed reads of ``Node`` values that record a ``Problem`` instead of raising.

The parser asks a ``Reader`` for "a positive integer here", "a duration there"; each read either
returns the value or records what is wrong (with the node's line and column and a message that
says what to write instead) and returns ``None``, so that one pass finds every problem.
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from typing import Any

from engine.errors import ExpressionError, Problem, Severity
from engine.expressions import check_predicate, check_template, is_template
from engine.language.durations import parse_duration
from engine.language.limits import (
    DEFAULT_LIMITS,
    MAX_PROBLEMS,
    ReaderLimits,
    over_limit,
    shorten,
)
from engine.language.model import Mark
from engine.language.yamlnodes import Node, join
from engine.secrets import reads_secrets, stored_use_problem

# The largest whole number a count, a version or a size may be: a PostgreSQL integer column.
MAX_COUNT = 2**31 - 1
# The largest growth factor of a backoff: delays grow as factor ** attempt, and any larger
# factor reaches a day's delay within a handful of attempts anyway.
MAX_FACTOR = 1_000.0
DOTTED_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def describe(value: Any) -> str:
    """A short rendering of a YAML value for messages: ``'text'``, ``3``, ``true``, ``a list``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{shorten(value)}'"
    return repr(value)


class Reader:
    """Collects problems for one source while the parser reads its nodes."""

    def __init__(
        self,
        source: str,
        limits: ReaderLimits = DEFAULT_LIMITS,
        read_problems: list[Problem] | tuple[Problem, ...] = (),
    ):
        self.source = source
        self.limits = limits
        self.problems: list[Problem] = []
        # Where reading the YAML already found a problem (a number out of range, a refused
        # tag): the value there is None, and "must be a positive integer, got nothing" on top
        # of "the number ... is too large" would only be noise.
        self._read_marks = {(p.line, p.column) for p in read_problems}
        self._templates = 0
        self._template_chars = 0
        self._over_template_budget = False
        # (mapping mark, key) pairs already suggested for a misspelt key: a required key that
        # is missing because it was misspelt is reported once, as the misspelling.
        self._suggested: set[tuple[Mark, str]] = set()

    def error(
        self, mark: Mark, path: str, message: str, severity: Severity = Severity.ERROR
    ) -> None:
        if (mark.line, mark.column) in self._read_marks:
            return
        if len(self.problems) < MAX_PROBLEMS:
            problem = Problem(self.source, mark.line, mark.column, path, message, severity)
            self.problems.append(problem)

    def fields(
        self, node: Node, path: str, allowed: frozenset[str], what: str
    ) -> dict[str, Node] | None:
        """The mapping's known keys; unknown keys are reported (with a suggestion)."""
        if not node.is_mapping:
            self.error(node.mark, path, f"{what} must be a mapping, got {describe(node.value)}")
            return None
        for key in node.value:
            if key not in allowed:
                self.unknown_key(node, key, path, allowed, what)
        return {key: child for key, child in node.value.items() if key in allowed}

    def unknown_key(
        self, node: Node, key: str, path: str, allowed: frozenset[str], what: str
    ) -> None:
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
        if close:
            self._suggested.add((node.mark, close[0]))
        hint = (
            f"did you mean '{close[0]}'?"
            if close
            else f"allowed keys: {', '.join(sorted(allowed))}"
        )
        message = f"unknown key '{shorten(key)}' in {what}; {hint}"
        self.error(node.key_marks[key], join(path, key), message)

    def require(
        self, fields: dict[str, Node], key: str, parent: Node, path: str, what: str
    ) -> Node | None:
        """``fields[key]``, reporting at the mapping when it is missing."""
        if key not in fields:
            if (parent.mark, key) not in self._suggested:
                self.error(parent.mark, path, f"missing required key '{key}' in {what}")
            return None
        return fields[key]

    def get(
        self, fields: dict[str, Node] | None, key: str, path: str, read: Any, default: Any = None
    ) -> Any:
        """``read(node, path, key)`` of an optional key, or ``default`` when it is absent."""
        if not fields or key not in fields:
            return default
        return read(fields[key], join(path, key), key)

    def need(
        self,
        fields: dict[str, Node] | None,
        key: str,
        parent: Node,
        path: str,
        what: str,
        read: Any,
    ) -> Any:
        """``read(node, path, key)`` of a required key; reported at the mapping when absent."""
        node = self.require(fields or {}, key, parent, path, what)
        return None if node is None else read(node, join(path, key), key)

    def wrong(self, node: Node, path: str, what: str, expected: str) -> None:
        self.error(node.mark, path, f"{what} must be {expected}, got {describe(node.value)}")

    def string(self, node: Node, path: str, what: str) -> str | None:
        if isinstance(node.value, str) and node.value:
            return node.value
        self.wrong(node, path, what, "a non-empty string")
        return None

    def name(self, node: Node, path: str, what: str) -> str | None:
        """A plain identifier-like name: letters, digits, ``_ . -``."""
        text = self.string(node, path, what)
        if text is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
            message = f"{what} '{shorten(text)}' may use only letters, digits, _ . -"
            self.error(node.mark, path, message)
            return None
        return text

    def dotted_path(self, node: Node, path: str, what: str) -> str | None:
        text = self.string(node, path, what)
        if text is not None and not DOTTED_PATH.match(text):
            message = f"{what} '{shorten(text)}' must be a dotted path like 'order' or 'a.b'"
            self.error(node.mark, path, message)
            return None
        return text

    def integer(
        self, node: Node, path: str, what: str, minimum: int = 1, maximum: int = MAX_COUNT
    ) -> int | None:
        """A whole number in ``[minimum, maximum]``; the default maximum is what a database
        integer column holds, so a version or a count can always be stored."""
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return self._at_most(node, path, what, maximum)
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        self.wrong(node, path, what, expected)
        return None

    def number(
        self, node: Node, path: str, what: str, minimum: float, maximum: float = MAX_FACTOR
    ) -> float | None:
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= minimum:
            at_most = self._at_most(node, path, what, maximum)
            return None if at_most is None else float(at_most)
        self.wrong(node, path, what, f"a number >= {minimum:g}")
        return None

    def _at_most(self, node: Node, path: str, what: str, maximum: float) -> Any:
        if node.value <= maximum:
            return node.value
        figure = f"{int(maximum):,}" if float(maximum).is_integer() else f"{maximum:g}"
        self.wrong(node, path, what, f"at most {figure}")
        return None

    def boolean(self, node: Node, path: str, what: str) -> bool | None:
        if isinstance(node.value, bool):
            return node.value
        self.wrong(node, path, what, "true or false")
        return None

    def duration(self, node: Node, path: str, what: str, positive: bool = True) -> timedelta | None:
        try:
            duration = parse_duration(node.value)
        except ValueError as exc:
            self.error(node.mark, path, str(exc))
            return None
        if positive and not duration:
            self.error(node.mark, path, f"{what} must be longer than 0s")
            return None
        return duration

    def choice(self, node: Node, path: str, what: str, choices: frozenset[str]) -> str | None:
        if isinstance(node.value, str) and node.value in choices:
            return node.value
        self.error(
            node.mark,
            path,
            f"bad {what} {describe(node.value)}: use one of {', '.join(sorted(choices))}",
        )
        return None

    def template(self, node: Node, path: str, what: str) -> str | None:
        text = self.string(node, path, what)
        if text is not None and not self._template_ok(node, path, text):
            return None
        return text

    def templates(self, node: Node, path: str) -> Any:
        """The plain value of ``node``, with every string leaf checked as a template."""
        if node.is_mapping:
            return {
                key: self.templates(child, join(path, key)) for key, child in node.value.items()
            }
        if node.is_sequence:
            return [self.templates(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
        if isinstance(node.value, str):
            self._template_ok(node, path, node.value)
        return node.value

    def template_pairs(
        self, node: Node, path: str, what: str
    ) -> tuple[tuple[str, Any], ...] | None:
        """A mapping of names to template values, as ordered pairs."""
        if not node.is_mapping:
            self.wrong(node, path, what, "a mapping")
            return None
        return tuple(
            (key, self.templates(child, join(path, key))) for key, child in node.value.items()
        )

    def _template_ok(self, node: Node, path: str, text: str) -> bool:
        return not is_template(text) or self._parses(node, path, text, check_template, "template")

    def predicate(self, node: Node, path: str, what: str) -> str | None:
        """A bare-expression predicate; one that reads secrets is refused (see ``stored``)."""
        text = self.string(node, path, what)
        if text is None or not self._parses(node, path, text, check_predicate, what):
            return None
        if reads_secrets(text, predicate=True):
            self.error(node.mark, path, stored_use_problem(f"{what} {text!r}"))
            return None
        return text

    def stored(self, node: Node, path: str, what: str) -> bool:
        """Report each template under ``node`` that reads secrets: its value would be stored.

        Returns:
            True when none does.
        """
        if node.is_mapping:
            return all([self.stored(child, join(path, key), what)
                        for key, child in node.value.items()])
        if node.is_sequence:
            return all([self.stored(child, f"{path}[{i}]", what)
                        for i, child in enumerate(node.value)])
        if isinstance(node.value, str) and reads_secrets(node.value):
            self.error(node.mark, path, stored_use_problem(f"{what} {node.value!r}"))
            return False
        return True

    def _parses(self, node: Node, path: str, text: str, check: Any, what: str) -> bool:
        if not self._within_template_budget(node, path, text):
            return False
        try:
            check(text)
        except ExpressionError as exc:
            self.error(node.mark, path, f"{what} {shorten(text)!r} does not parse: {exc.reason}")
            return False
        except RecursionError:
            # Jinja's parser recurses once per nesting level of an expression: `((((x))))` a
            # few hundred deep, or a long run of unary minus signs, overflows it.
            self.error(node.mark, path, f"{what} {shorten(text)!r} nests too deeply to parse; "
                       "split it up")
            return False
        return True

    def _within_template_budget(self, node: Node, path: str, text: str) -> bool:
        """Whether this template or predicate may still be parsed: Jinja parses and compiles
        each one (about 0.7 ms, plus about 8 µs a character here), so a file of 5,000
        templates took 3.8 s before these bounds."""
        self._templates += 1
        self._template_chars += len(text)
        if self._templates > self.limits.max_templates:
            limit, what = "max_templates", "too many templates and predicates"
        elif self._template_chars > self.limits.max_template_chars:
            limit, what = "max_template_chars", "templates and predicates are too long in all"
        else:
            return True
        if not self._over_template_budget:
            self._over_template_budget = True
            self.error(node.mark, path, over_limit(self.limits, limit, what))
        return False
