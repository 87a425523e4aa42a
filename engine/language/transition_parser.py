"""Transition nodes to ``Transition`` values with their condition (wait, poll, subscribe, when).

Part of the parser (``engine.language.parser`` calls ``parse_transition``). Deciding when a
condition is fulfilled belongs to ``engine.conditions``.
"""

from __future__ import annotations

from typing import Any

from engine.language import vocabulary as v
from engine.language.instruction_parser import DEFAULT_TIMEOUT, parse_spec
from engine.language.model import (
    NO_RETRY,
    Backoff,
    Instruction,
    PollCondition,
    SubscribeCondition,
    Transition,
    WaitCondition,
    WhenCondition,
)
from engine.language.reading import Reader
from engine.language.source_parser import parse_source
from engine.language.yamlnodes import Node, join


def parse_transition(
    reader: Reader, node: Node, path: str, index: int, state: str
) -> Transition | None:
    """Read one item of a state's ``transitions`` list."""
    target = node.value.get("to") if node.is_mapping else None
    label = f"to '{target.value}'" if target and isinstance(target.value, str) else str(index)
    what = f"transition {label} of state '{state}'"
    fields = reader.fields(node, path, v.TRANSITION_KEYS, what)
    if fields is None:
        return None
    kinds = [key for key in node.value if key in v.CONDITION_KINDS]
    if len(kinds) > 1:
        reader.error(
            node.key_marks[kinds[1]],
            join(path, kinds[1]),
            f"{what} has two conditions, '{kinds[0]}' and '{kinds[1]}'; give at most one "
            "(write two transitions to the same state)",
        )
    condition = (
        _CONDITIONS[kinds[0]](reader, fields[kinds[0]], join(path, kinds[0])) if kinds else None
    )
    return Transition(
        target=reader.need(fields, "to", node, path, what, reader.name),
        condition=condition,
        name=reader.get(fields, "name", path, reader.name),
        mark=node.mark,
    )


def _wait(reader: Reader, node: Node, path: str) -> WaitCondition | None:
    if not node.is_mapping:
        return WaitCondition(duration=reader.duration(node, path, "wait", positive=False))
    fields = reader.fields(node, path, v.WAIT_KEYS, "wait")
    if fields is None:
        return None
    if len(fields) != 1:
        _exactly_one(reader, node, path, list(fields), "wait", "duration or until")
        return None
    return WaitCondition(
        duration=reader.get(fields, "duration", path, _duration(reader)),
        until=reader.get(fields, "until", path, _stored_template(reader)),
    )


def _exactly_one(
    reader: Reader, node: Node, path: str, present: list[str], what: str, options: str
) -> None:
    if not present:
        reader.error(node.mark, path, f"{what} needs one of {options}")
    else:
        key = present[1]
        reader.error(node.key_marks[key], join(path, key), f"{what} takes {options}, not both")


def _duration(reader: Reader) -> Any:
    return lambda node, path, what: reader.duration(node, path, what, positive=False)


def _subscribe(reader: Reader, node: Node, path: str) -> SubscribeCondition | None:
    if isinstance(node.value, str):
        return SubscribeCondition(event=reader.name(node, path, "event"))
    fields = reader.fields(node, path, v.SUBSCRIBE_KEYS, "subscribe")
    if fields is None:
        return None
    return SubscribeCondition(
        event=reader.need(fields, "event", node, path, "subscribe", reader.name),
        correlate=reader.get(fields, "correlate", path, _stored_template(reader)),
        match=reader.get(fields, "match", path, reader.predicate),
        save_as=reader.get(fields, "save_as", path, reader.dotted_path),
        source=reader.get(fields, "source", path, lambda n, p, _w: parse_source(reader, n, p)),
    )


def _stored_template(reader: Reader) -> Any:
    """A template whose rendered value is stored (the due time, the correlation value)."""

    def read(node: Node, path: str, what: str) -> str | None:
        text = reader.template(node, path, what)
        return text if text is None or reader.stored(node, path, what) else None

    return read


def _when(reader: Reader, node: Node, path: str) -> WhenCondition | None:
    return WhenCondition(predicate=reader.predicate(node, path, "when"))


def _poll(reader: Reader, node: Node, path: str) -> PollCondition | None:
    fields = reader.fields(node, path, v.POLL_KEYS, "poll")
    if fields is None:
        return None
    kind = _poll_kind(reader, node, path)
    return PollCondition(
        instruction=_poll_instruction(reader, node, path, fields, kind),
        every=reader.need(fields, "every", node, path, "poll", reader.duration),
        until=reader.need(fields, "until", node, path, "poll", reader.predicate),
        backoff=reader.get(fields, "backoff", path, _backoff(reader)),
        max_attempts=reader.get(fields, "max_attempts", path, reader.integer),
        max_duration=reader.get(fields, "max_duration", path, reader.duration),
        on_error=reader.get(fields, "on_error", path, reader.name),
    )


def _poll_kind(reader: Reader, node: Node, path: str) -> str | None:
    from engine.instructions import gives_result, registered_kinds  # the registry decides

    kinds = [key for key in node.value if key in v.INSTRUCTION_KINDS]
    if len(kinds) == 1 and kinds[0] in registered_kinds() and not gives_result(kinds[0]):
        reader.error(
            node.key_marks[kinds[0]],
            join(path, kinds[0]),
            f"poll cannot run a '{kinds[0]}' instruction: it gives no result to test; "
            f"use one of {', '.join(_pollable())}",
        )
        return None
    if len(kinds) != 1:
        options = f"one instruction kind ({', '.join(_pollable())})"
        _exactly_one(reader, node, path, kinds, "poll", options)
        return None
    return kinds[0]


def _pollable() -> list[str]:
    from engine.instructions import gives_result, registered_kinds

    return [kind for kind in registered_kinds() if gives_result(kind)]


def _poll_instruction(
    reader: Reader, node: Node, path: str, fields: dict[str, Node], kind: str | None
) -> Instruction | None:
    if kind is None:
        return None
    return Instruction(
        kind=kind,
        name=reader.get(fields, "name", path, reader.name, "poll"),
        spec=parse_spec(reader, kind, fields[kind], join(path, kind)),
        save_as=reader.get(fields, "save_as", path, reader.dotted_path),
        retry=NO_RETRY,
        timeout=reader.get(fields, "timeout", path, reader.duration, DEFAULT_TIMEOUT),
        mark=node.mark,
    )


def _backoff(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> Backoff | None:
        if isinstance(node.value, bool):
            return Backoff() if node.value else None
        fields = reader.fields(node, path, v.BACKOFF_KEYS, "backoff")
        if fields is None:
            return None
        default = Backoff()
        factor = reader.get(
            fields, "factor", path, lambda n, p, w: reader.number(n, p, w, 1.0), default.factor
        )
        return Backoff(
            factor=factor,
            max_interval=reader.get(fields, "max_interval", path, reader.duration),
            jitter=reader.get(fields, "jitter", path, reader.boolean, default.jitter),
        )

    return read


_CONDITIONS: dict[str, Any] = {
    "wait": _wait,
    "poll": _poll,
    "subscribe": _subscribe,
    "when": _when,
}
