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

from engine.language.model import PollCondition, SubscribeCondition, TaskDef, WaitCondition

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
    given = variant.get("input")
    if given is None and task.input_schema:
        variant["input"] = given = sample_input(task.input_schema)
    declared = set((task.input_schema or {}).get("properties") or {})
    saved = _saved_from(task)
    for root, path in _template_refs(task):
        if root == "data" or (root == "input" and not _has(given, path)
                              and path[0] not in declared):  # the schema's say stands
            _place(variant, saved, root, path, "simulated")
    return variant


def _has(value: Any, path: list[str]) -> bool:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


def sample_input(schema: Any, depth: int = 0) -> Any:
    """A small value that a JSON Schema's common forms accept: the required properties of
    objects, ``minItems`` items of arrays, a number at ``minimum``, a string, an ``enum``'s
    first value. Good enough to start a dry run; not a schema solver."""
    if not isinstance(schema, dict) or depth > 16:
        return None
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: sample_input(properties.get(name, {}), depth + 1)
                for name in schema.get("required", []) if isinstance(name, str)}
    if kind == "array":
        return [sample_input(schema.get("items", {}), depth + 1)
                for _ in range(min(int(schema.get("minItems", 0) or 0), 8))]
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    return "simulated"


def _template_refs(task: TaskDef) -> list[tuple[str, list[str]]]:
    texts: list[str] = []
    for state in task.states:
        for instruction in state.instructions:
            _strings(instruction.spec, texts)
        for transition in state.transitions:
            condition = transition.condition
            if isinstance(condition, PollCondition):
                _strings(condition.instruction.spec, texts)
            elif isinstance(condition, SubscribeCondition):
                texts.append(condition.correlate or "")
            elif isinstance(condition, WaitCondition):
                texts.append(condition.until or "")
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


_COMPARED = re.compile(
    r"(?<![\w.])(event|result|data|input)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*"
    r"(==|!=|>=|<=|>|<|in)\s*('[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?|\[[^\]]*\])")


def aimed(predicates: tuple[str, ...]) -> dict[tuple[str, str], Any]:
    """For each ``name op literal`` a predicate compares, a value that makes it hold (or
    fail, under ``not (...)``): the simple comparisons task files write."""
    values: dict[tuple[str, str], Any] = {}
    for text in predicates:
        negated = text.startswith("not (")
        for root, path, op, literal in _COMPARED.findall(text):
            value = _aim(op, _literal(literal), negated)
            if value is not None:
                values[(root, path)] = value
    return values


def _literal(text: str) -> Any:
    if text.startswith("["):
        items = [_literal(t.strip()) for t in text[1:-1].split(",") if t.strip()]
        return items
    if text[:1] in "'\"":
        return text[1:-1]
    return float(text) if "." in text else int(text)


def _aim(op: str, literal: Any, negated: bool) -> Any:
    if op == "in":
        if not isinstance(literal, list) or not literal:
            return None
        return f"not-{literal[0]}" if negated else literal[0]
    if isinstance(literal, str):
        holds = op in ("==", ">=", "<=")
        return literal if holds != negated else f"not-{literal}"
    holds_with = {"==": literal, "!=": literal + 1, ">=": literal, "<=": literal,
                  ">": literal + 1, "<": literal - 1}
    fails_with = {"==": literal + 1, "!=": literal, ">=": literal - 1, "<=": literal + 1,
                  ">": literal, "<": literal}
    return (fails_with if negated else holds_with)[op]


def variants(task: TaskDef, script: dict[str, Any], predicates: tuple[str, ...]
             ) -> Iterator[dict[str, Any]]:
    """Copies of ``script`` with the world values the predicates read set: first each to
    the value its comparison aims at, then all of them to each candidate in turn."""
    refs = [(root, path.lstrip(".").split(".")) for text in predicates
            for root, path in _REF.findall(text)]
    if not refs:
        return
    saved, owners = _saved_from(task), _poll_owners(task)
    targets = [(owners.get(_bare(text)), root, path, value) for text in predicates
               for (root, path), value in aimed((text,)).items()]
    if targets:
        variant = copy.deepcopy(script)
        for owner, root, path, value in targets:
            _place(variant, saved, root, path.lstrip(".").split("."), value, owner)
        yield variant
    owned = [(owners.get(_bare(text)), root, path.lstrip(".").split(".")) for text in predicates
             for root, path in _REF.findall(text)]
    for value in candidates(predicates):
        variant = copy.deepcopy(script)
        for owner, root, path in owned:
            _place(variant, saved, root, path, value, owner)
        yield variant


def _bare(predicate: str) -> str:
    """The predicate a move assumes, without the ``not (...)`` of one assumed to fail."""
    return predicate[5:-1] if predicate.startswith("not (") else predicate


def _poll_owners(task: TaskDef) -> dict[str, tuple[str, ...]]:
    """A poll's ``until`` -> the replies (``state/instruction``) whose ``result`` it reads:
    two polls of one task may both test ``result.status``, each against its own answer."""
    owners: dict[str, tuple[str, ...]] = {}
    for state in task.states:
        for transition in state.transitions:
            condition = transition.condition
            if isinstance(condition, PollCondition) and condition.until:
                key = f"{state.name}/{condition.instruction.name}"
                owners[condition.until] = (*owners.get(condition.until, ()), key)
    return owners


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
           path: list[str], value: Any, owner: tuple[str, ...] | None = None) -> None:
    """Set ``value`` where the script answers ``root.path``; a poll's ``result`` only in
    the replies of ``owner`` (the polls whose ``until`` reads it), when known."""
    if root == "event":
        _place_in_events(script, None, path, value)
    elif root == "input":
        script["input"] = _set(script.get("input"), path, value)
    elif root == "result":
        for key, reply in script.get("instructions", {}).items():
            if owner is None or key in owner:
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
