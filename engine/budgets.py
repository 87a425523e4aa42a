"""Budgets of one template or predicate evaluation: time, operations and characters produced.

Jinja's sandbox stops a template from reaching for code, not from spending: ``'x' * 10**9``,
``10 ** 10 ** 8``, ``'x' | center(10**9)`` or two nested 100,000-item loops are all legal.
This module owns the accounting that bounds them. ``engine.expressions`` calls it from every
place where a template can spend: each loop iteration, call, filter and intercepted operator
charges one *operation* and checks the wall-clock deadline; every string, list or number an
operator, filter, method or output builds is sized **before** it is built (``'x' * n`` is
``len('x') * n`` characters, ``a ** b`` is about ``b * log2(a)`` bits) and its size counts
toward the characters the evaluation may produce. What is checked, and when, is decided in
``engine.expressions``; the estimates and the error live here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import BudgetExceeded

# Python refuses to convert an int of more than 4300 digits to text (sys.int_info), so a
# larger one could never be shown or stored; it also bounds the cost of arithmetic on it.
MAX_INT_DIGITS = 4300
_MAX_INT_BITS = int(MAX_INT_DIGITS * 3.3219) + 1


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """What one evaluation may spend. ``deadline_setting`` names the setting the time limit
    came from: ``STEP_MAX_SECONDS`` when the step had less time left than a template may take.
    """

    max_seconds: float = 1.0
    max_operations: int = 50_000
    max_output: int = 1_000_000
    deadline_setting: str = "TEMPLATE_MAX_SECONDS"
    deadline_limit: float | None = None  # the setting's value, when not max_seconds


class Budget:
    """The running account of one evaluation (one ``render`` or ``evaluate`` call)."""

    __slots__ = ("deadline", "expression", "limits", "operations", "produced")

    def __init__(self, limits: TemplateLimits, expression: str):
        self.limits = limits
        self.expression = expression
        self.operations = 0
        self.produced = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def charge(self, operations: int = 1) -> None:
        """Count ``operations`` (loop iterations, calls, filters, operators) and check time.

        Raises:
            BudgetExceeded: past ``TEMPLATE_MAX_OPERATIONS`` or the deadline.
        """
        self.operations += operations
        if self.operations > self.limits.max_operations:
            raise self._exceeded(
                "loop iterations, calls and operators", "TEMPLATE_MAX_OPERATIONS",
                self.limits.max_operations)
        self.check_time()

    def check_time(self) -> None:
        """Raise ``BudgetExceeded`` once the deadline has passed."""
        if time.monotonic() > self.deadline:
            limits = self.limits
            shown = limits.max_seconds if limits.deadline_limit is None else limits.deadline_limit
            raise self._exceeded("evaluation time (seconds)", limits.deadline_setting, shown)

    def produce(self, size: int, what: str = "characters produced") -> None:
        """Count ``size`` characters (or items) about to be built; refuse before building.

        Raises:
            BudgetExceeded: the evaluation would produce more than ``TEMPLATE_MAX_OUTPUT``.
        """
        self.check_size(size, what)
        self.produced += size
        if self.produced > self.limits.max_output:
            raise self._exceeded("characters produced", "TEMPLATE_MAX_OUTPUT",
                                 self.limits.max_output)
        self.check_time()

    def check_size(self, size: int, what: str) -> None:
        """Refuse one value of ``size`` characters or items over ``TEMPLATE_MAX_OUTPUT``."""
        if size > self.limits.max_output:
            raise self._exceeded(what, "TEMPLATE_MAX_OUTPUT", self.limits.max_output)

    def check_bits(self, bits: int) -> None:
        """Refuse an integer result of about ``bits`` bits (more than ``MAX_INT_DIGITS``)."""
        if bits > _MAX_INT_BITS:
            raise BudgetExceeded(self.expression, "integer digits", "MAX_INT_DIGITS",
                                 MAX_INT_DIGITS)

    def check_result(self, value: Any) -> None:
        """Refuse a result that would take more than ``TEMPLATE_MAX_OUTPUT`` characters as
        JSON (shared references count each time they would be written out)."""
        self.check_size(value_size(value, self.limits.max_output), "size of the result")

    def _exceeded(self, what: str, setting: str, limit: float) -> BudgetExceeded:
        return BudgetExceeded(self.expression, what, setting, limit)


def value_size(value: Any, limit: int) -> int:
    """About how many characters ``value`` takes as text or JSON; stops counting past ``limit``.

    A list shared ``n`` times counts ``n`` times, as ``str`` or ``json.dumps`` would write it,
    but is walked once (sizes are remembered by identity), so ``[a, a, a]`` ten levels deep
    costs ten steps, not 3**10. Walks without recursion; stops as soon as one part is over
    ``limit``.
    """
    if not isinstance(value, _WALKED):
        return _scalar_size(value)
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # being walked: met again below itself means a cycle
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, children_done = stack.pop()
        if id(item) in sizes and not children_done:
            continue
        if id(item) in open_ and not children_done:
            return limit + 1  # a cycle would print forever
        children = _children(item)
        if not children_done:
            open_.add(id(item))
            stack.append((item, True))
            stack.extend((child, False) for child in children if isinstance(child, _WALKED))
            continue
        size = 2 + len(children) + sum(
            sizes[id(c)] if isinstance(c, _WALKED) else _scalar_size(c) for c in children)
        if size > limit:
            return size
        sizes[id(item)] = size
        open_.discard(id(item))
    return sizes[id(value)]


_WALKED = (list, tuple, set, frozenset, Mapping)


def _children(item: Any) -> list[Any]:
    if isinstance(item, Mapping):
        return [part for pair in item.items() for part in pair]
    return list(item)


def _scalar_size(item: Any) -> int:
    if isinstance(item, str | bytes):
        return len(item) + 2
    if isinstance(item, bool) or item is None:
        return 5
    if isinstance(item, int):
        return 1 + item.bit_length() * 30103 // 100000
    return 24  # floats, datetimes, Undefined, other scalars: short as text


def sized(value: Any) -> int:
    """``len(value)`` for strings and containers, 0 for anything without a length."""
    try:
        return len(value)
    except TypeError:
        return 0


# ``%`` formatting: flags, width (or *), precision (or *). Widths and precisions are what
# make ``'%0999999999d' % 1`` a gigabyte.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
# ``format`` spec mini-language: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")


def percent_width(fmt: str, args: Any) -> int:
    """The widest width or precision a ``%`` format asks for (``*`` takes it from ``args``)."""
    widest = 0
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for number in (width, precision):
            if number.isdigit():
                widest = max(widest, int(number[:12]))
    if "*" in fmt:
        items = args if isinstance(args, tuple) else (args,)
        widest = max([widest, *(abs(a) for a in items if isinstance(a, int))])
    return widest


def format_spec_width(spec: str) -> int:
    """The width or precision a ``format`` spec such as ``>999999999`` or ``.50f`` asks for."""
    match = _FORMAT_SPEC.match(spec)
    if match is None:
        return 0
    return max((int(n[:12]) for n in match.groups() if n), default=0)
