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
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ExpressionError


def _tojson(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _seconds(value: Any) -> float:
    # Imported here: engine.language imports this module, so a top-level import would cycle.
    from engine.language.durations import parse_duration

    return parse_duration(value).total_seconds()


class _TaskEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with mapping keys winning over attributes: in a task, ``input.items`` is
    the input's ``items`` key, not ``dict.items``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _make_environment() -> _TaskEnvironment:
    env = _TaskEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    # An allow-list of globals: none of Jinja's helpers (cycler, joiner, lipsum) are needed.
    env.globals = {"range": env.globals["range"], "dict": dict}
    env.filters["tojson"] = _tojson
    env.filters["seconds"] = _seconds
    return env


_ENV = _make_environment()
_FORBIDDEN_NODES = (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


def _check_ast(text: str, tree: nodes.Node) -> None:
    for node in tree.find_all(_FORBIDDEN_NODES):
        raise ExpressionError(text, f"'{type(node).__name__.lower()}' is not allowed", node.lineno)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        name = _accessed_name(node)
        if isinstance(name, str) and name.startswith("_"):
            raise ExpressionError(text, f"access to '{name}' is not allowed", node.lineno)


def _accessed_name(node: nodes.Node) -> object:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node.arg, nodes.Const):
        return node.arg.value
    return None


@lru_cache(maxsize=2048)
def _template(text: str) -> jinja2.Template:
    try:
        _check_ast(text, _ENV.parse(text))
        return _ENV.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ExpressionError(text, exc.message or "syntax error", exc.lineno) from None


@lru_cache(maxsize=2048)
def _expression(text: str) -> Any:
    if "{{" in text or "{%" in text:
        raise ExpressionError(
            text, "a predicate is a bare expression; write it without {{ }} or {% %}", 1
        )
    try:
        compiled = _ENV.compile_expression(text, undefined_to_none=False)
        _check_ast(text, _ENV.parse(f"{{{{ ({text}) }}}}"))
        return compiled
    except jinja2.TemplateSyntaxError as exc:
        raise ExpressionError(text, exc.message or "syntax error", exc.lineno) from None


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


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template inside ``value``.

    Dicts, lists and tuples are rendered item by item (tuples come back as lists, as JSON
    would have them). A string that is exactly one ``{{ expr }}`` yields the expression's own
    value (a number, dict, list, bool or None); any other string with template syntax renders to
    a string; plain strings and other values pass through.

    Raises:
        ExpressionError: an expression failed (undefined name, wrong type, forbidden access).
    """
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, Mapping):
        return {key: render(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, context) for item in value]
    return value


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    if not is_template(text):
        return text
    expression = _single_expression(text)
    if expression is not None:
        result = _call(text, lambda: expression(**context))
        return copy.deepcopy(result) if isinstance(result, dict | list) else result
    return _call(text, lambda: _template(text).render(**context))


def evaluate(predicate: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a bare-expression predicate (``result.status == 200``) to a bool.

    Raises:
        ExpressionError: it does not parse or failed when evaluated.
    """
    return bool(_call(predicate, lambda: _expression(predicate)(**context)))


def _call(text: str, thunk: Any) -> Any:
    try:
        result = thunk()
        if isinstance(result, jinja2.Undefined):
            result._fail_with_undefined_error()
        return result
    except ExpressionError:
        raise
    except jinja2.TemplateError as exc:
        raise ExpressionError(text, exc.message or type(exc).__name__) from None
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
        raise ExpressionError(text, f"{type(exc).__name__}: {exc}") from None


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
