"""The tree a task file reads into: ``Node`` values that remember where they were written,
and the index of those places by dotted path.

``yamlnodes`` builds the tree; ``parser`` gives it its meaning; ``validation`` cites places
through ``MarkIndex``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.language.model import Mark


@dataclass(frozen=True, slots=True)
class Node:
    """One YAML node turned into a plain value.

    ``value`` is a scalar (str, int, float, bool, None), a ``dict[str, Node]`` for a mapping
    (keys as written) or a ``list[Node]`` for a sequence. ``key_marks`` holds, for a mapping,
    where each key was written: unknown and duplicate keys are reported there.
    """

    value: Any
    mark: Mark
    key_marks: dict[str, Mark] = field(default_factory=dict)

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.value, list)

    def plain(self) -> Any:
        """The value with every nested ``Node`` unwrapped (dicts, lists and scalars)."""
        if self.is_mapping:
            return {key: child.plain() for key, child in self.value.items()}
        if self.is_sequence:
            return [child.plain() for child in self.value]
        return self.value


# Validation cites nodes at most this deep (states.a.transitions[0].poll.on_error is 6): the
# index stops there, so a deep free-form value (a `set` body) adds no paths to it.
_INDEX_DEPTH = 8


class MarkIndex:
    """Where every value and every mapping key of a document was written, by dotted path.

    Validation works on the parsed model and uses this to cite the exact node it blames.
    """

    def __init__(self, root: Node | None, source: str):
        self.source = source
        self.values: dict[str, Mark] = {}
        self.keys: dict[str, Mark] = {}
        if root is not None:
            self._add(root, "", 0)

    def _add(self, node: Node, path: str, depth: int) -> None:
        self.values[path] = node.mark
        if depth >= _INDEX_DEPTH:
            return
        if node.is_mapping:
            for key, child in node.value.items():
                child_path = join(path, key)
                self.keys[child_path] = node.key_marks[key]
                self._add(child, child_path, depth + 1)
        elif node.is_sequence:
            for index, child in enumerate(node.value):
                self._add(child, f"{path}[{index}]", depth + 1)

    def value(self, path: str) -> Mark:
        """The mark of the value at ``path``, else of its nearest recorded ancestor."""
        return self._nearest(self.values, path)

    def key(self, path: str) -> Mark:
        """The mark of the key that introduces ``path``, else of the value's nearest ancestor."""
        return self.keys.get(path) or self.value(path)

    def _nearest(self, marks: dict[str, Mark], path: str) -> Mark:
        while path:
            if path in marks:
                return marks[path]
            path = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", path) if "." in path or "[" in path else ""
        return marks.get("", Mark(self.source, 1, 1))


def join(path: str, key: str) -> str:
    """The dotted path of ``key`` inside the mapping at ``path``."""
    return f"{path}.{key}" if path else key
