"""YAML nodes to the frozen ``TaskDef`` model, collecting every problem on the way.

This module owns the task and state levels (names, version, timeouts, input_schema, retention,
final states); instructions, transitions and ``lifecycle`` are read by ``instruction_parser``,
``transition_parser`` and ``lifecycle_parser``. Checks that need the whole graph (targets
exist, reachability) are ``engine.language.validation``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from engine.errors import Problem
from engine.language import vocabulary as v
from engine.language.instruction_parser import parse_instruction
from engine.language.lifecycle_parser import lifecycle_reader
from engine.language.limits import DEFAULT_LIMITS, ReaderLimits, over_limit, shorten
from engine.language.model import Mark, Outcome, Retention, State, TaskDef
from engine.language.reading import Reader, describe
from engine.language.transition_parser import parse_transition
from engine.language.yamlnodes import Node, join

TASK_NAME = re.compile(r"^[a-z0-9_.-]+$")
STATE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REQUIRED = ("name", "version", "start_state", "states")


def parse_task(
    root: Node,
    source: str,
    limits: ReaderLimits = DEFAULT_LIMITS,
    read_problems: list[Problem] | tuple[Problem, ...] = (),
) -> tuple[TaskDef | None, list[Problem]]:
    """Read a whole task document.

    Args:
        root: the document's root node, from ``yamlnodes.read_yaml``.
        source: the file name carried into the ``TaskDef`` and every problem.
        limits: the bounds on the number of states, instructions and transitions.
        read_problems: what reading the YAML found; nothing more is said at those places.

    Returns:
        The task (meaningful only when no error-severity problem was found) and the problems.
    """
    reader = Reader(source, limits, read_problems)
    if not root.is_mapping:
        reader.error(
            root.mark,
            "",
            "a task file must be a mapping of keys (name, version, start_state, states, ...), "
            f"got {describe(root.value)}",
        )
        return None, reader.problems
    return _task(reader, root, source), reader.problems


def _task(reader: Reader, root: Node, source: str) -> TaskDef:
    fields = reader.fields(root, "", v.TASK_KEYS, "the task") or {}
    for key in _REQUIRED:
        reader.require(fields, key, root, "", "the task")
    finals = reader.get(fields, "final_states", "", _final_states(reader), {})
    return TaskDef(
        name=reader.get(fields, "name", "", _task_name(reader)),
        version=reader.get(fields, "version", "", reader.integer),
        start_state=reader.get(fields, "start_state", "", reader.name),
        states=reader.get(fields, "states", "", _states(reader, finals), ()),
        description=reader.get(fields, "description", "", _text(reader), ""),
        max_global_transition_timeout=reader.get(
            fields, "max_global_transition_timeout", "", reader.duration
        ),
        deadline=reader.get(fields, "deadline", "", reader.duration),
        input_schema=reader.get(fields, "input_schema", "", _input_schema(reader)),
        retention=reader.get(fields, "retention", "", _retention(reader)),
        lifecycle=reader.get(fields, "lifecycle", "", lifecycle_reader(reader)),
        webhook_secret=reader.get(fields, "webhook_secret", "", _secret_name(reader)),
        source=source,
    )


def _text(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        if isinstance(node.value, str):
            return node.value
        reader.wrong(node, path, what, "text")
        return None

    return read


def _task_name(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        name = reader.string(node, path, what)
        if name is not None and not TASK_NAME.match(name):
            reader.error(
                node.mark,
                path,
                f"bad task name '{shorten(name)}': use lowercase letters, digits, _ . - "
                "(like order_fulfilment)",
            )
            return None
        return name

    return read


def _input_schema(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> dict[str, Any] | None:
        if not node.is_mapping:
            reader.wrong(node, path, what, "a JSON Schema (a mapping)")
            return None
        schema = node.plain()
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            at, at_path = _descend(node, path, list(exc.path))
            reader.error(
                at.mark, at_path, f"input_schema is not a valid JSON Schema: {exc.message}"
            )
            return None
        return schema

    return read


def _descend(node: Node, path: str, steps: list[Any]) -> tuple[Node, str]:
    """The node (and its path) at ``steps`` below ``node``, as far as the steps lead."""
    for step in steps:
        if node.is_mapping and step in node.value:
            node, path = node.value[step], join(path, step)
        elif node.is_sequence and isinstance(step, int) and step < len(node.value):
            node, path = node.value[step], f"{path}[{step}]"
        else:
            break
    return node, path


def _retention(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> Retention | None:
        fields = reader.fields(node, path, v.RETENTION_KEYS, "retention")
        if fields is None:
            return None
        # Days become timedeltas subtracted from now when runs are purged: keep them within
        # the same 100 years as durations (36,525 days).
        days = _days(reader)
        return Retention(
            succeeded_days=reader.get(fields, "succeeded_days", path, days),
            failed_days=reader.get(fields, "failed_days", path, days),
            max_finished_runs=reader.get(
                fields, "max_finished_runs", path, lambda n, p, w: reader.integer(n, p, w, 0)
            ),
        )

    return read


def _secret_name(reader: Reader) -> Any:
    """The name of a secret, never a value: a value here would be stored in the database."""

    def read(node: Node, path: str, what: str) -> str | None:
        name = reader.string(node, path, what)
        if name is not None and not SECRET_NAME.match(name):
            reader.error(
                node.mark,
                path,
                # The value is not echoed: it may be the secret itself, pasted by mistake.
                "webhook_secret must name a secret (letters, digits and _, like SHOP_WEBHOOK, "
                "read from the environment as secrets are), not hold its value",
            )
            return None
        return name

    return read


def _days(reader: Reader) -> Any:
    return lambda node, path, what: reader.integer(node, path, what, 0, 36_525)


def _outcome(reader: Reader, node: Node, path: str) -> Outcome | None:
    value = reader.choice(node, path, "outcome", v.OUTCOMES)
    return Outcome(value) if value else None


def _final_states(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> dict[str, tuple[Outcome, Mark]]:
        if not node.is_mapping:
            reader.wrong(node, path, what, "a mapping of state names to succeeded or failed")
            return {}
        finals = {}
        for name, child in node.value.items():
            outcome = _outcome(reader, child, join(path, name))
            if outcome is not None and _state_name_ok(reader, node, name, path):
                finals[name] = (outcome, node.key_marks[name])
        return finals

    return read


def _state_name_ok(reader: Reader, parent: Node, name: str, path: str) -> bool:
    if STATE_NAME.match(name):
        return True
    reader.error(
        parent.key_marks[name],
        join(path, name),
        f"state name '{shorten(name)}' may use only letters, digits, _ and -",
    )
    return False


def _states(reader: Reader, finals: dict[str, tuple[Outcome, Mark]]) -> Any:
    def read(node: Node, path: str, what: str) -> tuple[State, ...]:
        if not node.is_mapping:
            reader.wrong(node, path, what, "a mapping of state names to states")
            return ()
        if not node.value:
            reader.error(node.mark, path, "states is empty; a task needs at least one state")
            return ()
        if not _within(reader, node, path, "max_states", "states"):
            return ()
        states = [
            _state(reader, name, child, join(path, name), finals.get(name), node.key_marks[name])
            for name, child in node.value.items()
            if _state_name_ok(reader, node, name, path)
        ]
        listed_only = [
            State(name=name, outcome=outcome, mark=mark)
            for name, (outcome, mark) in finals.items()
            if name not in node.value
        ]
        return tuple(states + listed_only)

    return read


def _state(
    reader: Reader,
    name: str,
    node: Node,
    path: str,
    listed: tuple[Outcome, Mark] | None,
    mark: Mark,
) -> State:
    if node.value is None:  # `shipped:` with nothing under it: a state with no options
        node = Node({}, node.mark)
    what = f"state '{name}'"
    fields = reader.fields(node, path, v.STATE_KEYS, what) or {}
    return State(
        name=name,
        instructions=_items(reader, fields, path, "instructions", name, parse_instruction),
        transitions=_items(reader, fields, path, "transitions", name, parse_transition),
        outcome=_state_outcome(reader, name, fields, path, listed),
        timeout=reader.get(fields, "timeout", path, reader.duration),
        on_timeout=reader.get(fields, "on_timeout", path, reader.name),
        description=reader.get(fields, "description", path, _text(reader), ""),
        mark=mark,
    )


def _state_outcome(
    reader: Reader,
    name: str,
    fields: dict[str, Node],
    path: str,
    listed: tuple[Outcome, Mark] | None,
) -> Outcome | None:
    if "final" not in fields:
        return listed[0] if listed else None
    outcome = _outcome(reader, fields["final"], join(path, "final"))
    if outcome is not None and listed is not None and listed[0] != outcome:
        reader.error(
            fields["final"].mark,
            join(path, "final"),
            f"state '{name}' is final '{outcome}' here but '{listed[0]}' in final_states; "
            "give it one outcome",
        )
    return outcome


def _items(
    reader: Reader,
    fields: dict[str, Node],
    path: str,
    key: str,
    state: str,
    parse: Callable[[Reader, Node, str, int, str], Any],
) -> tuple[Any, ...]:
    if key not in fields:
        return ()
    node, path = fields[key], join(path, key)
    if not node.is_sequence:
        reader.wrong(node, path, f"{key} of state '{state}'", "a list")
        return ()
    if not _within(reader, node, path, f"max_{key}", f"{key} of state '{state}'"):
        return ()
    parsed = (parse(reader, child, f"{path}[{i}]", i, state) for i, child in enumerate(node.value))
    return tuple(item for item in parsed if item is not None)


def _within(reader: Reader, node: Node, path: str, limit: str, what: str) -> bool:
    """Whether the mapping or list ``node`` has at most ``limits.<limit>`` entries."""
    if len(node.value) <= getattr(reader.limits, limit):
        return True
    message = over_limit(reader.limits, limit, f"too many {what} ({len(node.value):,})")
    reader.error(node.mark, path, message)
    return False
