"""How big what an operator, a ``str`` method or a filter is about to build would be,
checked against an evaluation's ``Budget`` **before** it is built: ``'x' * n`` is
``len('x') * n`` characters, ``a ** b`` about ``b * log2(a)`` bits, ``'x'.center(w)`` is ``w``
characters, ``'%0999999999d' % 1`` asks for a width of 999,999,999. ``engine.sandbox`` calls
these from its hooks; what is counted and against which setting is ``engine.budgets``'.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.budgets import Budget, percent_width, sized, value_size


def text_size(value: Any, budget: Budget) -> int:
    """Characters ``value`` takes as text (counting stops past the output budget)."""
    if isinstance(value, str):
        return len(value)
    return value_size(value, budget.limits.max_output)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def charge_result(budget: Budget, result: Any) -> Any:
    """Count what a call, filter or operator built; refuse a container too large to write."""
    if isinstance(result, str | bytes):
        budget.produce(len(result))
    elif isinstance(result, _CONTAINERS):
        budget.produce(len(result))
        check_container(budget, result)
    return result


def check_container(budget: Budget, value: Any) -> Any:
    """Refuse a container whose text would be over the output budget. A container holding
    the same list many times is small in memory but huge to write out, compare or hash
    (``[a, a, a]`` ten levels deep): it is refused when it is made, before any of that."""
    budget.check_size(value_size(value, budget.limits.max_output), "size of a value")
    return value


# ---------------------------------------------------------------- operators


def _check_power(budget: Budget, base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        budget.check_bits(exponent * base.bit_length())


def _check_multiply(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        budget.check_bits(left.bit_length() + right.bit_length())
    elif isinstance(right, int) and isinstance(left, _SEQUENCES):
        _check_repeat(budget, left, right)
    elif isinstance(left, int) and isinstance(right, _SEQUENCES):
        _check_repeat(budget, right, left)


def _check_repeat(budget: Budget, items: Any, times: int) -> None:
    budget.produce(len(items) * max(times, 0), "size of a repetition")
    if isinstance(items, list | tuple) and times > 1:  # the items' text repeated, too
        budget.check_size(value_size(items, budget.limits.max_output) * times,
                          "size of a repetition")


_SEQUENCES = (str, bytes, list, tuple)


def _check_add(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        budget.produce(len(left) + len(right), "size of a concatenation")


def _check_modulo(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, str):
        budget.check_size(percent_width(left, right), "width of a % format")
        budget.produce(len(left) + value_size(right, budget.limits.max_output))


OPERATOR_CHECKS: dict[str, Callable[[Budget, Any, Any], None]] = {
    "**": _check_power, "*": _check_multiply, "+": _check_add, "%": _check_modulo,
}


# ---------------------------------------------------------------- methods of str and int


def _check_width(budget: Budget, obj: Any, width: Any = 0, *_: Any, **__: Any) -> None:
    if isinstance(width, int):
        budget.produce(max(width, len(obj)), "width of a padded string")


def _check_expandtabs(budget: Budget, obj: Any, tabsize: Any = 8, **__: Any) -> None:
    if isinstance(tabsize, int):
        tab = "\t" if isinstance(obj, str) else b"\t"
        budget.produce(len(obj) + obj.count(tab) * max(tabsize, 0), "size of expanded tabs")


def _check_replace(budget: Budget, obj: Any, old: Any = "", new: Any = "", count: Any = -1,
                   **__: Any) -> None:
    if isinstance(old, str | bytes) and isinstance(new, str | bytes) and type(old) is type(obj):
        found = obj.count(old)
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        budget.produce(len(obj) + found * max(len(new) - len(old), 0), "size of a replace")


def join_items(budget: Budget, items: Any) -> Any:
    """What a join will write, as something its size can be told from before it is made: a
    string (its characters are the items), a list or a tuple as they are; anything else (a
    mapping's keys, a set, a generator) read into a list, one charged operation an item.
    Without it, ``'x' * 99999 | join('y' * 99999)`` built ten gigabytes before its size was
    counted."""
    if isinstance(items, str | bytes | list | tuple):
        return items
    parts = []
    for item in items:
        budget.charge()
        parts.append(item)
    return parts


def _check_join(budget: Budget, obj: Any, items: Any = (), *_: Any, **__: Any) -> None:
    if isinstance(items, str | bytes):
        size = len(items)
    elif isinstance(items, list | tuple):
        size = value_size(items, budget.limits.max_output)
    else:
        return
    budget.produce(size + len(obj) * max(len(items) - 1, 0), "size of a join")


def _check_translate(budget: Budget, obj: Any, table: Any = None, *_: Any, **__: Any) -> None:
    if isinstance(table, Mapping):
        widest = max((sized(v) for v in table.values()), default=1)
        budget.produce(len(obj) * max(widest, 1), "size of a translate")


def _check_to_bytes(budget: Budget, obj: Any, length: Any = 1, *_: Any, **__: Any) -> None:
    if isinstance(length, int):
        budget.produce(length, "length of to_bytes")


_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_width, "ljust": _check_width, "rjust": _check_width,
    "zfill": _check_width, "expandtabs": _check_expandtabs, "replace": _check_replace,
    "join": _check_join, "translate": _check_translate,
}


def check_method(budget: Budget, obj: Any, args: tuple, kwargs: dict) -> tuple:
    """Refuse a call of a string's (or an int's) method whose result would be over the
    budget; returns the arguments to call it with (a join's items read into a list)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes) and name in _METHOD_CHECKS:
        if name == "join" and args:
            args = (join_items(budget, args[0]), *args[1:])
        _METHOD_CHECKS[name](budget, owner, *args, **kwargs)
    elif isinstance(owner, int) and name == "to_bytes":
        _check_to_bytes(budget, owner, *args, **kwargs)
    return args


# ---------------------------------------------------------------- filters


def _stringifies(factor: int = 1) -> Callable[..., None]:
    """A check for a filter that turns its whole input into text (about ``factor`` x)."""

    def check(budget: Budget, value: Any, *_: Any, **__: Any) -> None:
        budget.produce(text_size(value, budget) * factor, "size of a filter's text")

    return check


def _check_indent(budget: Budget, value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(value) if isinstance(value, str) else ""
    step = width if isinstance(width, int) else sized(width)
    budget.produce(len(text) + (text.count("\n") + 1) * max(step, 0), "size of an indent")


def _check_wordwrap(budget: Budget, value: Any, width: Any = 79, break_long_words: Any = True,
                    wrapstring: Any = None, *_: Any, **__: Any) -> None:
    text = value if isinstance(value, str) else ""
    lines = len(text) // max(width if isinstance(width, int) else 1, 1) + 1
    budget.produce(len(text) + lines * max(sized(wrapstring), 1), "size of a wordwrap")


def _check_center(budget: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    if isinstance(width, int):
        budget.produce(max(width, text_size(value, budget)), "width of a padded string")


def _check_format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        budget.check_size(percent_width(value, kwargs or args), "width of a % format")
        budget.produce(len(value) + value_size(kwargs or args, budget.limits.max_output))


def _check_replace_filter(budget: Budget, value: Any, old: Any = "", new: Any = "",
                          count: Any = None, *_: Any, **__: Any) -> None:
    if isinstance(value, str):
        _check_replace(budget, value, str(old), str(new), -1 if count is None else count)


def _check_join_filter(budget: Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    _check_join(budget, str(d), value)


def _check_count_arg(name: str, position: int) -> Callable[..., None]:
    """A check that an item count argument (``batch``'s padding, ``slice``'s slices) is
    within the output budget: each item is at least one character of output."""

    def check(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
        count = kwargs.get(name, args[position] if len(args) > position else 0)
        if isinstance(count, int):
            budget.produce(max(count, 0), f"items made by {name}")

    return check


# Filters whose input is read before it is checked (``join`` of a generator or a string).
FILTER_INPUTS: dict[str, Callable[[Budget, Any], Any]] = {"join": join_items}

FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center, "indent": _check_indent, "wordwrap": _check_wordwrap,
    "format": _check_format, "replace": _check_replace_filter, "join": _check_join_filter,
    "batch": _check_count_arg("linecount", 0), "slice": _check_count_arg("slices", 0),
    "e": _stringifies(6), "escape": _stringifies(6), "forceescape": _stringifies(6),
    "urlencode": _stringifies(12), "xmlattr": _stringifies(6), "urlize": _stringifies(4),
    "pprint": _stringifies(), "tojson": _stringifies(), "string": _stringifies(),
    "capitalize": _stringifies(), "lower": _stringifies(), "upper": _stringifies(3),
    "title": _stringifies(3), "trim": _stringifies(), "striptags": _stringifies(),
    "truncate": _stringifies(), "wordcount": _stringifies(), "list": _stringifies(),
}
