"""Templates and predicates over a run's data, in a Jinja2 sandbox.

This module owns how task files compute values: ``{{ ... }}`` templates in instruction options,
``wait.until`` and ``subscribe.correlate``, and bare-expression predicates in ``when``,
``poll.until`` and ``subscribe.match``. Secrets and their redaction belong to ``engine.secrets``.
What a rendered value is used for is the caller's.

Safety: ``ImmutableSandboxedEnvironment`` refuses unsafe attributes and mutation at run time,
and ``check_template``/``check_predicate`` refuse, when a task is loaded, any access to a name
starting with ``_`` and any ``import``/``include``/``extends`` — so nothing written in a task file
can run code or read files. ``StrictUndefined`` makes a misspelt name fail loudly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser

from engine.budgets import Budget, TemplateLimits
from engine.errors import ExpressionError
from engine.sandbox import budget_scope, end_scope, make_environment

_ENV = make_environment()
_FORBIDDEN_NODES = (
    nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends,
    # {% autoescape %}: Jinja evaluates its argument at compile time, and tasks need no HTML.
    nodes.EvalContextModifier, nodes.ScopedEvalContextModifier,
)
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
# How deeply expressions and blocks may nest. Jinja's parser and compiler recurse once per
# level and Python refuses generated code nested past 200 parentheses; real templates nest a
# handful of levels.
MAX_NESTING = 50
# What a template that cannot be parsed or compiled raises from Jinja's or Python's depths:
# an int literal of more than 4300 digits (ValueError), nesting past the parser's recursion
# (RecursionError), generated code Python refuses (SyntaxError, MemoryError).
_PARSE_FAILURES = (ValueError, RecursionError, SyntaxError, MemoryError, OverflowError)


def _check_ast(text: str, tree: nodes.Node) -> None:
    _check_nesting(text, tree)  # first: find_all recurses once per level
    for node in tree.find_all(_FORBIDDEN_NODES):
        name = "autoescape" if isinstance(node, nodes.EvalContextModifier) else (
            type(node).__name__.lower())
        raise ExpressionError(text, f"'{name}' is not allowed", node.lineno)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        name = _accessed_name(node)
        if isinstance(name, str) and name.startswith("_"):
            raise ExpressionError(text, f"access to '{name}' is not allowed", node.lineno)


def _check_nesting(text: str, tree: nodes.Node) -> None:
    """Refuse a tree nested deeper than ``MAX_NESTING`` (walked without recursion)."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ExpressionError(
                text, f"nested more than {MAX_NESTING} levels deep", node.lineno)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


def _accessed_name(node: nodes.Node) -> object:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node.arg, nodes.Const):
        return node.arg.value
    return None


def _budget_loops(tree: nodes.Template) -> nodes.Template:
    """Wrap every loop's iterable so that each iteration is charged to the budget. The
    wrapper is an environment attribute: no name a task can write reaches it."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.EnvironmentAttribute("budgeted_iter", lineno=loop.lineno),
            [loop.iter], [], None, None, lineno=loop.lineno)
    return tree


def _parse(text: str, source: str) -> nodes.Template:
    """Parse and check ``source`` (reported as ``text``); nothing is evaluated."""
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ExpressionError(text, exc.message or "syntax error", exc.lineno) from None
    except _PARSE_FAILURES as exc:
        raise ExpressionError(text, _parse_failure(exc)) from None
    _check_ast(text, tree)
    return tree


def _parse_failure(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return f"nested more than {MAX_NESTING} levels deep"
    return f"cannot be compiled: {type(exc).__name__}: {str(exc)[:200]}"


def _compile(text: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except jinja2.TemplateSyntaxError as exc:
        raise ExpressionError(text, exc.message or "syntax error", exc.lineno) from None
    except _PARSE_FAILURES as exc:
        raise ExpressionError(text, _parse_failure(exc)) from None


@lru_cache(maxsize=2048)
def _template(text: str) -> jinja2.Template:
    tree = _budget_loops(_parse(text, text))
    return _compile(text, lambda: _ENV.from_string(tree))


@lru_cache(maxsize=2048)
def _expression(text: str) -> Any:
    if "{{" in text or "{%" in text:
        raise ExpressionError(
            text, "a predicate is a bare expression; write it without {{ }} or {% %}", 1
        )
    expr = _compile(text, lambda: _parse_expression(text))
    _check_ast(text, nodes.Template([nodes.Output([expr])]))  # find_all skips the root
    return _compile(text, lambda: _ENV.compile_expression(text, undefined_to_none=False))


def _parse_expression(text: str) -> nodes.Expr:
    """Parse a bare expression as ``compile_expression`` does, without compiling it."""
    parser = Parser(_ENV, text, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise jinja2.TemplateSyntaxError(
            "chunk after expression", parser.stream.current.lineno, None, None)
    return expr


def check_template(text: str) -> None:
    """Check that ``text`` is a template the sandbox accepts.

    Raises:
        ExpressionError: it does not parse, or reaches for something forbidden.
    """
    _template(text)
    _single_expression(text)


def check_predicate(text: str) -> None:
    """Check that ``text`` is a bare Jinja expression the sandbox accepts.

    Raises:
        ExpressionError: it does not parse, carries braces, or reaches for something forbidden.
    """
    _expression(text)


def _single_expression(text: str) -> Any:
    """The compiled expression when ``text`` is exactly one ``{{ expr }}``, else ``None``."""
    match = _SINGLE_EXPRESSION.match(text)
    inner = match["expr"] if match else ""
    if not match or any(marker in inner for marker in ("{{", "}}", "{%", "%}", "{#")):
        return None
    try:
        return _expression(inner)
    except ExpressionError as exc:
        raise ExpressionError(text, exc.reason, exc.line) from None


def is_template(text: str) -> bool:
    """Whether ``text`` holds any template syntax (plain strings render to themselves)."""
    return "{{" in text or "{%" in text or "{#" in text


def render(value: Any, context: Mapping[str, Any], *, limits: TemplateLimits | None = None) -> Any:
    """Render every template inside ``value``, all of it within one budget.

    Dicts, lists and tuples are rendered item by item (tuples come back as lists, as JSON
    would have them). A string that is exactly one ``{{ expr }}`` yields the expression's own
    value (a number, dict, list, bool or None); any other string with template syntax renders to
    a string; plain strings and other values pass through.

    Args:
        value: the spec value holding templates.
        context: the names templates see (``build_context``).
        limits: the evaluation's budgets; the defaults of ``TemplateLimits`` when ``None``.

    Raises:
        BudgetExceeded: the templates spent more time, operations or output than ``limits``.
        ExpressionError: an expression failed (undefined name, wrong type, forbidden access).
    """
    budget = Budget(limits or TemplateLimits(), "")
    token = budget_scope(budget)
    try:
        return _render(value, context, budget)
    finally:
        end_scope(token)


def _render(value: Any, context: Mapping[str, Any], budget: Budget) -> Any:
    if isinstance(value, str):
        return _render_string(value, context, budget)
    if isinstance(value, Mapping):
        return {key: _render(item, context, budget) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_render(item, context, budget) for item in value]
    return value


def _render_string(text: str, context: Mapping[str, Any], budget: Budget) -> Any:
    if not is_template(text):
        return text
    budget.expression = text
    expression = _single_expression(text)
    if expression is not None:
        # A copy: the run's data must not share lists and dicts with its input.
        return _call(text, budget, lambda: _copied(expression(**context)))
    template = _template(text)
    # root_render_func, not render(): render() rewrites tracebacks of errors into template
    # frames, compiling code for each frame (slow on a deep recursion), which we never show.
    return _call(text, budget, lambda: _ENV.concat(
        template.root_render_func(template.new_context(dict(context)))))


def _copied(result: Any) -> Any:
    return copy.deepcopy(result) if isinstance(result, dict | list) else result


def evaluate(
    predicate: str, context: Mapping[str, Any], *, limits: TemplateLimits | None = None
) -> bool:
    """Evaluate a bare-expression predicate (``result.status == 200``) to a bool.

    Raises:
        BudgetExceeded: it spent more time, operations or output than ``limits``.
        ExpressionError: it does not parse or failed when evaluated.
    """
    compiled = _expression(predicate)
    budget = Budget(limits or TemplateLimits(), predicate)
    token = budget_scope(budget)
    try:
        return bool(_call(predicate, budget, lambda: compiled(**context)))
    finally:
        end_scope(token)


def _call(text: str, budget: Budget, thunk: Any) -> Any:
    try:
        result = thunk()
        if isinstance(result, jinja2.Undefined):
            result._fail_with_undefined_error()
        budget.check_result(result)
        return result
    except ExpressionError:
        raise
    except jinja2.TemplateError as exc:
        raise ExpressionError(text, exc.message or type(exc).__name__) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError,
            AssertionError) as exc:  # Jinja's truncate asserts on its arguments
        raise ExpressionError(text, f"{type(exc).__name__}: {exc}"[:500]) from None
    except RecursionError:
        reason = "recursion too deep (a macro or loop calling itself?)"
        raise ExpressionError(text, reason) from None
    except MemoryError:
        raise ExpressionError(text, "out of memory") from None


def build_context(
    *,
    input: Mapping[str, Any],  # noqa: A002 - the name task files use
    data: Mapping[str, Any],
    run: Mapping[str, Any],
    secrets: Mapping[str, str],
    **extra: Any,
) -> dict[str, Any]:
    """The names templates and predicates see.

    Args:
        input: the run's input.
        data: the run's data (what ``save_as`` and ``set`` wrote).
        run: ``id``, ``task``, ``version``, ``state`` and ``entry`` of the run.
        secrets: usually a ``Secrets``.
        **extra: ``result`` (poll), ``event`` (subscribe), ``now`` (an aware datetime)...

    Returns:
        A fresh dict suitable as a ``render``/``evaluate`` context.
    """
    return {"input": input, "data": data, "run": run, "secrets": secrets, **extra}
