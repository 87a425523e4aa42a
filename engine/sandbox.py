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
from jinja2.runtime import Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import _PassArg, pass_context

from engine.budgets import Budget, format_spec_width
from engine.sizing import (
    FILTER_CHECKS,
    FILTER_INPUTS,
    OPERATOR_CHECKS,
    charge_result,
    check_container,
    check_method,
    text_size,
)

# A macro call costs about what four loop iterations do (measured: 50,000 calls of a small
# recursive macro took 120-250 ms, 50,000 iterations of a loop printing its index 75 ms), so
# it counts four operations: a macro that calls itself twice per level fails as fast as a loop.
MACRO_CALL_OPERATIONS = 4

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


class _BudgetFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with each field's width and text counted."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = active_budget()
        budget.check_size(format_spec_width(format_spec), "width of a format field")
        budget.produce(text_size(value, budget))
        return super().format_field(value, format_spec)


def _budgeted_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` charging one operation per call, with its size check before it runs and its
    result's size counted after."""
    check, read = FILTER_CHECKS.get(name), FILTER_INPUTS.get(name)
    skip = 1 if _PassArg.from_obj(func) is not None else 0

    @functools.wraps(func)
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        budget.charge()
        if read is not None and len(args) > skip:
            args = (*args[:skip], read(budget, args[skip]), *args[skip + 1:])
        if check is not None and len(args) > skip:
            check(budget, *args[skip:], **kwargs)
        return charge_result(budget, func(*args, **kwargs))

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
    intercepted_binops = frozenset(OPERATOR_CHECKS)

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
        OPERATOR_CHECKS[operator](budget, left, right)
        return charge_result(budget, self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = active_budget()
        budget.charge(MACRO_CALL_OPERATIONS if isinstance(__obj, Macro) else 1)
        args = check_method(budget, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        return charge_result(budget, result)

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
        return check_container(budget, value)

    def budgeted_concat(self, parts: tuple[Any, ...]) -> str:
        budget = active_budget()
        budget.produce(sum(text_size(part, budget) for part in parts), "size of a ~ join")
        return "".join(map(str, parts))


@pass_context
def _finalize(context: Any, value: Any) -> Any:
    """Every piece of output (``{{ }}`` and template text) counts toward the characters an
    evaluation may produce, before it is turned into text."""
    budget = active_budget()
    budget.produce(text_size(value, budget))
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
