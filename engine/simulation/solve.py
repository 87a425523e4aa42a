"""Filling a generated script so that a move's predicates hold: a small, honest search.

The checker's scripts answer with empty results; a path that needs ``event.amount >=
input.total`` or ``result.body.status == 'shipped'`` to hold needs values there. This
module does not solve predicates: it finds the names they read from the world
(``event.*``, ``result.*``, ``input.*``, and ``data.<saved>.*`` written from an
instruction's result or an event), and tries a few candidate values in all of them at
once: the literals the predicates compare with, then a large number, true, and false.
The caller keeps the first variant whose dry run ends where the path said; the rest stay
unconfirmed.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from engine.language.model import PollCondition, SubscribeCondition, TaskDef

_REF = re.compile(r"(?<![\w.])(event|result|data|input)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_LITERAL = re.compile(r"'([^']*)'|\"([^\"]*)\"|(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])")
_LARGE = 10**9
MAX_VARIANTS = 8


def candidates(predicates: tuple[str, ...]) -> list[Any]:
    """Values worth trying: the predicates' literals, then a large number, true, false."""
    found: list[Any] = []
    for text in predicates:
        for quoted, double, number in _LITERAL.findall(text):
            value: Any = quoted or double
            if number:
                value = float(number) if "." in number else int(number)
            if value not in found:
                found.append(value)
    for value in (_LARGE, True, False, 0):
        if not any(v is value or (type(v) is type(value) and v == value) for v in found):
            found.append(value)
    return found[:MAX_VARIANTS]


def with_template_values(task: TaskDef, script: dict[str, Any]) -> dict[str, Any]:
    """``script`` with a stand-in value wherever the task's templates read the world's
    answers (``data.payment.reference`` in a request body): a template reading a value an
    empty reply lacks would fail the attempt, and the path with it."""
    variant = copy.deepcopy(script)
    saved = _saved_from(task)
    for root, path in _template_refs(task):
        if root == "data":
            _place(variant, saved, root, path, "simulated")
    return variant


def _template_refs(task: TaskDef) -> list[tuple[str, list[str]]]:
    texts: list[str] = []
    for state in task.states:
        for instruction in state.instructions:
            _strings(instruction.spec, texts)
        for transition in state.transitions:
            condition = transition.condition
            if isinstance(condition, PollCondition):
                _strings(condition.instruction.spec, texts)
    return [(root, path.lstrip(".").split(".")) for text in texts
            for root, path in _REF.findall(text)]


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    """Every string in a spec (its templates), to a bounded depth."""
    if depth > 32:
        return
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _strings(item, out, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _strings(getattr(value, f.name), out, depth + 1)


def variants(task: TaskDef, script: dict[str, Any], predicates: tuple[str, ...]
             ) -> Iterator[dict[str, Any]]:
    """Copies of ``script`` with every world value the predicates read set to each
    candidate in turn."""
    refs = [(root, path.lstrip(".").split(".")) for text in predicates
            for root, path in _REF.findall(text)]
    if not refs:
        return
    saved = _saved_from(task)
    for value in candidates(predicates):
        variant = copy.deepcopy(script)
        for root, path in refs:
            _place(variant, saved, root, path, value)
        yield variant


def _saved_from(task: TaskDef) -> dict[str, tuple[str, str]]:
    """``save_as`` root -> ("reply", state/instruction) or ("event", event name)."""
    saved: dict[str, tuple[str, str]] = {}
    for state in task.states:
        for instruction in state.instructions:
            if instruction.save_as:
                saved[instruction.save_as.split(".")[0]] = (
                    "reply", f"{state.name}/{instruction.name}")
        for transition in state.transitions:
            condition = transition.condition
            if isinstance(condition, PollCondition) and condition.instruction.save_as:
                saved[condition.instruction.save_as.split(".")[0]] = (
                    "reply", f"{state.name}/{condition.instruction.name}")
            if isinstance(condition, SubscribeCondition) and condition.save_as:
                saved[condition.save_as.split(".")[0]] = ("event", condition.event)
    return saved


def _place(script: dict[str, Any], saved: dict[str, tuple[str, str]], root: str,
           path: list[str], value: Any) -> None:
    if root == "event":
        _place_in_events(script, None, path, value)
    elif root == "input":
        script["input"] = _set(script.get("input"), path, value)
    elif root == "result":
        for reply in script.get("instructions", {}).values():
            _set_in_reply(reply, path, value)
    elif path and path[0] in saved:
        where, name = saved[path[0]]
        if where == "event":
            _place_in_events(script, name, path[1:], value)
        elif name in script.get("instructions", {}):
            _set_in_reply(script["instructions"][name], path[1:], value)


def _place_in_events(script: dict[str, Any], name: str | None, path: list[str],
                     value: Any) -> None:
    for event in script.get("events", []):
        if name is None or event["name"] == name:
            event["data"] = _set(event.get("data"), path, value)


def _set_in_reply(reply: dict[str, Any], path: list[str], value: Any) -> None:
    """A reply's result is ``result``, or for an HTTP reply {status, headers, body};
    an error reply has none."""
    if "status" in reply and path and path[0] == "body":
        reply["body"] = _set(reply.get("body"), path[1:], value)
    elif "result" in reply:
        reply["result"] = _set(reply.get("result"), path, value)


def _set(target: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    base = dict(target) if isinstance(target, dict) else {}
    base[path[0]] = _set(base.get(path[0]), path[1:], value)
    return base
