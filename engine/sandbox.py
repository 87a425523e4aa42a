"""The Jinja2 sandbox that templates and predicates run in, with its budget hooks.

This module owns the environment: which globals and filters exist, how attributes resolve,
and every hook through which an evaluation spends (``engine.budgets`` does the accounting).
It leaves parsing, load-time checks and the rendering API to ``engine.expressions``.

Nothing is evaluated before a run supplies a budget: the optimizer (constant folding) is off,
output nodes are never folded into constants at compile time, and every hook raises
``nodes.Impossible`` (Jinja's "not a constant") when no evaluation is active, so loading
``{{ 10 ** 10 ** 8 }}`` or ``{{ 'x' | center(10**9) }}`` only parses it.

At run time each of these charges one operation and checks the deadline: a loop iteration
(loop iterables are wrapped by ``engine.expressions`` in ``budgeted_iter``, an environment
attribute no task text can name), a call (macros, methods, ``loop()``), a filter, and the
operators ``**``, ``*``, ``+`` and ``%``; and everything that builds a string or a list is
sized before it is built.
"""

from __future__ import annotations

import functools
import json
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import _PassArg, pass_context

from engine.budgets import Budget, format_spec_width, percent_width, sized, value_size

_BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def active_budget() -> Budget:
    """The budget of the evaluation running in this thread.

    Raises:
        nodes.Impossible: none is running: Jinja is trying to fold a constant at load time,
            which must not evaluate anything.
    """
    budget = _BUDGET.get()
    if budget is None:
        raise nodes.Impossible()
    return budget


def _text_size(value: Any, budget: Budget) -> int:
    if isinstance(value, str):
        return len(value)
    return value_size(value, budget.limits.max_output)


_CONTAINERS = (list, tuple, dict, set, frozenset)


def _charge_result(budget: Budget, result: Any) -> Any:
    if isinstance(result, str | bytes):
        budget.produce(len(result))
    elif isinstance(result, _CONTAINERS):
        budget.produce(len(result))
        _check_container(budget, result)
    return result


def _check_container(budget: Budget, value: Any) -> Any:
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


_OPERATOR_CHECKS: dict[str, Callable[[Budget, Any, Any], None]] = {
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


def _check_join(budget: Budget, obj: Any, items: Any = (), *_: Any, **__: Any) -> None:
    if isinstance(items, list | tuple):
        size = value_size(items, budget.limits.max_output)
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


def _check_method(budget: Budget, obj: Any, args: tuple, kwargs: dict) -> None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes) and name in _METHOD_CHECKS:
        _METHOD_CHECKS[name](budget, owner, *args, **kwargs)
    elif isinstance(owner, int) and name == "to_bytes":
        _check_to_bytes(budget, owner, *args, **kwargs)


class _BudgetFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with each field's width and text counted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = active_budget()
        budget.check_size(format_spec_width(format_spec), "width of a format field")
        budget.produce(_text_size(value, budget))
        return super().format_field(value, format_spec)


# ---------------------------------------------------------------- filters


def _stringifies(factor: int = 1) -> Callable[..., None]:
    """A check for a filter that turns its whole input into text (about ``factor`` x)."""

    def check(budget: Budget, value: Any, *_: Any, **__: Any) -> None:
        budget.produce(_text_size(value, budget) * factor, "size of a filter's text")

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
        budget.produce(max(width, _text_size(value, budget)), "width of a padded string")


def _check_format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        budget.check_size(percent_width(value, kwargs or args), "width of a % format")
        budget.produce(len(value) + value_size(kwargs or args, budget.limits.max_output))


def _check_replace_filter(budget: Budget, value: Any, old: Any = "", new: Any = "",
                          count: Any = None, *_: Any, **__: Any) -> None:
    if isinstance(value, str):
        _check_replace(budget, value, str(old), str(new), -1 if count is None else count)


def _check_join_filter(budget: Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    if isinstance(value, list | tuple):
        _check_join(budget, str(d), value)


def _check_count_arg(name: str, position: int) -> Callable[..., None]:
    """A check that an item count argument (``batch``'s padding, ``slice``'s slices) is
    within the output budget: each item is at least one character of output."""

    def check(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
        count = kwargs.get(name, args[position] if len(args) > position else 0)
        if isinstance(count, int):
            budget.produce(max(count, 0), f"items made by {name}")

    return check


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
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


def _budgeted_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` charging one operation per call, with its size check before it runs and its
    result's size counted after."""
    check = _FILTER_CHECKS.get(name)
    skip = 1 if _PassArg.from_obj(func) is not None else 0

    @functools.wraps(func)
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        budget.charge()
        if check is not None and len(args) > skip:
            check(budget, *args[skip:], **kwargs)
        return _charge_result(budget, func(*args, **kwargs))

    return budgeted


def _tojson(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _seconds(value: Any) -> float:
    # Imported here: engine.language imports engine.expressions, which imports this module.
    from engine.language.durations import parse_duration

    return parse_duration(value).total_seconds()


# ---------------------------------------------------------------- the environment


class _BudgetedIterable:
    """A loop's iterable, charging one operation per item (nested loops multiply)."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]):
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        budget = active_budget()
        for item in self.items:
            budget.charge()
            yield item

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator without compile-time evaluation, and with ``~`` sized."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        # Jinja folds constant output at compile time even with the optimizer off; here
        # every output is evaluated (and counted) at run time, template text included.
        raise nodes.Impossible()

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # an assignment target (for a, b in ...)
            super().visit_Tuple(node, frame)
            return
        self._checked(super().visit_Tuple, node, frame)

    def _checked(self, visit: Callable[..., None], node: nodes.Expr, frame: Frame) -> None:
        self.write("environment.budgeted_container(")
        visit(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.budgeted_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class TaskEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with mapping keys winning over attributes (in a task, ``input.items``
    is the input's ``items`` key, not ``dict.items``) and with budget hooks."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset(_OPERATOR_CHECKS)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = active_budget()
        budget.charge()
        _OPERATOR_CHECKS[operator](budget, left, right)
        return _charge_result(budget, self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = active_budget()
        budget.charge()
        _check_method(budget, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return _charge_result(budget, result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
                value.__name__ not in ("format", "format_map")):
            return None
        text = value.__self__
        if type(text) is not str:
            return None
        vformat, is_map = _BudgetFormatter(self).vformat, value.__name__ == "format_map"

        def budgeted_format(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return vformat(text, args, kwargs)

        return functools.update_wrapper(budgeted_format, value)

    def budgeted_iter(self, items: Any) -> _BudgetedIterable:
        return _BudgetedIterable(items)

    def budgeted_container(self, value: Any) -> Any:
        budget = active_budget()
        budget.charge()
        return _check_container(budget, value)

    def budgeted_concat(self, parts: tuple[Any, ...]) -> str:
        budget = active_budget()
        budget.produce(sum(_text_size(part, budget) for part in parts), "size of a ~ join")
        return "".join(map(str, parts))


@pass_context
def _finalize(context: Any, value: Any) -> Any:
    """Every piece of output (``{{ }}`` and template text) counts toward the characters an
    evaluation may produce, before it is turned into text."""
    budget = active_budget()
    budget.produce(_text_size(value, budget))
    return value


def _budgeted_range(*args: Any) -> range:
    budget = active_budget()
    budget.charge()
    span = range(*args)
    if len(span) > budget.limits.max_operations:
        budget.charge(len(span))  # raises, naming TEMPLATE_MAX_OPERATIONS
    return span


def make_environment() -> TaskEnvironment:
    """A fresh sandbox: no optimizer, budgeted filters, an allow-list of globals."""
    env = TaskEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
        optimized=False, finalize=_finalize,
    )
    # An allow-list of globals: none of Jinja's helpers (cycler, joiner, lipsum) are needed.
    env.globals = {"range": _budgeted_range, "dict": dict}
    env.filters["tojson"] = _tojson
    env.filters["seconds"] = _seconds
    env.filters = {name: _budgeted_filter(name, f) for name, f in env.filters.items()}
    return env


def budget_scope(budget: Budget) -> Any:
    """Make ``budget`` the active one in this thread; returns the token for ``end_scope``."""
    return _BUDGET.set(budget)


def end_scope(token: Any) -> None:
    _BUDGET.reset(token)
