"""A parsed ``TaskDef`` to a JSON-ready dict and back, for storing definitions in a database.

Durations become seconds, tuples become lists, marks become ``[line, column]`` (the source is
stored once, at the top), and a value whose field admits several dataclasses (an instruction's
spec, a transition's condition) carries its class name under ``"type"``.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import timedelta
from enum import Enum
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from engine.language import model
from engine.language.model import Mark, TaskDef

_CLASSES = {
    cls.__name__: cls
    for cls in vars(model).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}


def task_to_dict(task: TaskDef) -> dict[str, Any]:
    """A JSON-serialisable dict of ``task``; ``task_from_dict`` reads it back."""
    return _encode(task, TaskDef)


def task_from_dict(data: dict[str, Any]) -> TaskDef:
    """The ``TaskDef`` that ``task_to_dict`` wrote.

    Raises:
        KeyError, TypeError, ValueError: ``data`` is not such a dict.
    """
    return _decode(TaskDef, data, data.get("source", "<string>"))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, vars(model))


def _is_union(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType)


def _encode(value: Any, hint: Any) -> Any:
    if isinstance(value, Mark):
        return [value.line, value.column]
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return _encode_dataclass(value, hint)
    if isinstance(value, tuple):
        args = get_args(hint)
        item_hint = args[0] if args else Any
        return [_encode(item, item_hint) for item in value]
    return value


def _encode_dataclass(value: Any, hint: Any) -> dict[str, Any]:
    hints = _hints(type(value))
    encoded = {
        f.name: _encode(getattr(value, f.name), hints[f.name]) for f in dataclasses.fields(value)
    }
    if _is_union(hint):  # every union of the model is of dataclasses (and None) only
        encoded["type"] = type(value).__name__
    return encoded


def _decode(hint: Any, value: Any, source: str) -> Any:
    if value is None or hint is Any:
        return value
    if _is_union(hint):
        return _decode_union(hint, value, source)
    if hint is Mark:
        return Mark(source, value[0], value[1])
    if hint is timedelta:
        return timedelta(seconds=value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, source)
    if get_origin(hint) is tuple:
        return _decode_tuple(hint, value, source)
    return value


def _decode_union(hint: Any, value: Any, source: str) -> Any:
    options = [arg for arg in get_args(hint) if arg is not type(None)]
    if dataclasses.is_dataclass(options[0]):
        return _decode_dataclass(_CLASSES[value["type"]], value, source)
    return _decode(options[0], value, source)


def _decode_dataclass(cls: type, value: dict[str, Any], source: str) -> Any:
    hints = _hints(cls)
    kwargs = {
        f.name: _decode(hints[f.name], value[f.name], source)
        for f in dataclasses.fields(cls)
        if f.name in value
    }
    return cls(**kwargs)


def _decode_tuple(hint: Any, value: list[Any], source: str) -> tuple[Any, ...]:
    args = get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], item, source) for item in value)
    return tuple(_decode(arg, item, source) for arg, item in zip(args, value, strict=True))
