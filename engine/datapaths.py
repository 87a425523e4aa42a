"""Dotted paths into a run's JSON data: ``get_path`` reads, ``set_path`` writes copy-on-write.

This module owns the path syntax only: segments separated by dots, none of them empty. Reading
may step into lists with a numeric segment (``items.0.id``); writing creates missing
intermediate mappings but never writes into a list, because a list index in a ``save_as`` or
``set`` path is almost always a mistake that would silently pad or clobber another element.
Callers (the ``set`` instruction, the runner's ``save_as``) decide what a failure means to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_MISSING: Any = object()


def split_path(path: str) -> tuple[str, ...]:
    """The segments of ``path``.

    Raises:
        ValueError: ``path`` is not a string, is empty, or has an empty segment (``a..b``).
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"a data path must be a non-empty string, got {path!r}")
    segments = tuple(path.split("."))
    if "" in segments:
        raise ValueError(f"data path {path!r} has an empty segment")
    return segments


def get_path(doc: Any, path: str, default: Any = _MISSING) -> Any:
    """The value at ``path`` in ``doc``.

    Args:
        doc: nested mappings and lists (a run's data, input or an instruction result).
        path: dotted path; a numeric segment indexes a list (``items.0``).
        default: returned when the path does not exist; without it a miss raises.

    Returns:
        The value found, or ``default``.

    Raises:
        KeyError: the path does not exist and no ``default`` was given. The message names the
            path and the first segment that was missing.
        ValueError: ``path`` is malformed.
    """
    node = doc
    for depth, segment in enumerate(split_path(path)):
        found, node = _step(node, segment)
        if not found:
            if default is not _MISSING:
                return default
            where = ".".join(split_path(path)[: depth + 1])
            raise KeyError(f"{path!r}: nothing at {where!r}")
    return node


def _step(node: Any, segment: str) -> tuple[bool, Any]:
    if isinstance(node, Mapping):
        return (True, node[segment]) if segment in node else (False, None)
    if isinstance(node, Sequence) and not isinstance(node, str | bytes):
        if segment.isdigit() and int(segment) < len(node):
            return True, node[int(segment)]
    return False, None


def set_path(doc: Mapping[str, Any] | None, path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``value`` at ``path``; ``doc`` itself is never modified.

    Only the mappings along the path are copied (shallowly); siblings are shared with ``doc``.
    Missing intermediate mappings are created.

    Args:
        doc: the document to write into; ``None`` is an empty document.
        path: dotted path; every segment is a mapping key (no list indexes).
        value: stored as is (not copied).

    Returns:
        The new document.

    Raises:
        ValueError: ``path`` is malformed.
        TypeError: ``doc`` or a value on the way is not a mapping (a list, a number, ...).
    """
    segments = split_path(path)
    return _set(doc if doc is not None else {}, segments, value, path, 0)


def _set(node: Any, segments: tuple[str, ...], value: Any, path: str, depth: int) -> dict:
    if not isinstance(node, Mapping):
        where = ".".join(segments[:depth]) or "the document"
        raise TypeError(f"cannot set {path!r}: {where!r} is a {type(node).__name__}, not a mapping")
    copy = dict(node)
    head = segments[depth]
    if depth == len(segments) - 1:
        copy[head] = value
    else:
        copy[head] = _set(node.get(head, {}), segments, value, path, depth + 1)
    return copy
