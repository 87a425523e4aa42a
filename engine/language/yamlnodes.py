"""YAML reading: text to a tree of ``Node`` values that remember where they were written.

This module owns the YAML dialect of task files: one document, PyYAML's safe loader, booleans
only as ``true``/``false`` (so states called ``on``, ``off``, ``yes`` or ``no`` stay strings),
no timestamps (dates stay strings, so parsed definitions stay JSON), and duplicate keys refused.
It knows nothing of the task vocabulary; ``engine.language.parser`` gives the tree its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Problem
from engine.language.model import Mark


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-style booleans and without implicit timestamps."""


_TaskLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TaskLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


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


class MarkIndex:
    """Where every value and every mapping key of a document was written, by dotted path.

    Validation works on the parsed model and uses this to cite the exact node it blames.
    """

    def __init__(self, root: Node | None, source: str):
        self.source = source
        self.values: dict[str, Mark] = {}
        self.keys: dict[str, Mark] = {}
        if root is not None:
            self._add(root, "")

    def _add(self, node: Node, path: str) -> None:
        self.values[path] = node.mark
        if node.is_mapping:
            for key, child in node.value.items():
                child_path = join(path, key)
                self.keys[child_path] = node.key_marks[key]
                self._add(child, child_path)
        elif node.is_sequence:
            for index, child in enumerate(node.value):
                self._add(child, f"{path}[{index}]")

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


def read_yaml(text: str, source: str = "<string>") -> tuple[Node | None, list[Problem]]:
    """Compose one YAML document into a ``Node`` tree.

    Args:
        text: the YAML source.
        source: a file name or label, carried into every ``Mark`` and ``Problem``.

    Returns:
        The root node (``None`` when the text is empty or not valid YAML) and the problems found:
        a syntax error, more than one document, unsupported tags, duplicate keys.
    """
    try:
        loader = _TaskLoader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        return None, [_reader_problem(exc, text, source)]
    try:
        root = loader.get_single_node()
        if root is None:
            return None, [_problem(source, 1, 1, "", _EMPTY)]
        converter = _Converter(loader, source)
        return converter.convert(root, ""), converter.problems
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, source)]
    finally:
        loader.dispose()


_EMPTY = "the file is empty; a task needs at least name, version, start_state and states"


def _syntax_problem(exc: yaml.MarkedYAMLError, source: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    reason = exc.problem or exc.context or "unreadable YAML"
    if "expected a single document" in (exc.context or ""):
        reason = "the file holds more than one YAML document; put one task per file"
    return _problem(source, line, column, "", f"YAML syntax error: {reason}")


def _reader_problem(exc: yaml.reader.ReaderError, text: str, source: str) -> Problem:
    """A character YAML does not allow (a control character, a stray byte): PyYAML reports
    it by offset, so turn that into a line and column."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return _problem(source, line, column, "", f"character #x{code:04x} is not allowed in YAML; "
                    "remove it or quote it as an escape (\\x..) in a double-quoted string")


def _problem(source: str, line: int, column: int, path: str, message: str) -> Problem:
    return Problem(source=source, line=line, column=column, path=path, message=message)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Converter:
    """Turns composed PyYAML nodes into ``Node`` values, collecting problems as it goes."""

    def __init__(self, loader: _TaskLoader, source: str):
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []

    def mark(self, yaml_node: yaml.Node) -> Mark:
        start = yaml_node.start_mark
        return Mark(self.source, start.line + 1, start.column + 1)

    def convert(self, yaml_node: yaml.Node, path: str) -> Node:
        if yaml_node.tag not in _PLAIN_TAGS and not isinstance(yaml_node, yaml.ScalarNode):
            mark = self.mark(yaml_node)
            message = f"unsupported YAML: the tag '{yaml_node.tag}' is not allowed"
            self.problems.append(_problem(self.source, mark.line, mark.column, path, message))
            return Node(None, mark)
        if isinstance(yaml_node, yaml.MappingNode):
            return self._mapping(yaml_node, path)
        if isinstance(yaml_node, yaml.SequenceNode):
            items = [self.convert(child, f"{path}[{i}]") for i, child in enumerate(yaml_node.value)]
            return Node(items, self.mark(yaml_node))
        return Node(self._scalar(yaml_node, path), self.mark(yaml_node))

    def _scalar(self, yaml_node: yaml.Node, path: str) -> Any:
        try:
            return self.loader.construct_object(yaml_node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            mark = self.mark(yaml_node)
            message = f"unsupported YAML: {exc.problem}"
            self.problems.append(_problem(self.source, mark.line, mark.column, path, message))
            return None

    def _mapping(self, yaml_node: yaml.MappingNode, path: str) -> Node:
        values: dict[str, Node] = {}
        key_marks: dict[str, Mark] = {}
        for key_node, value_node in yaml_node.value:
            key_mark = self.mark(key_node)
            key = self._key(key_node, key_mark, path)
            if key is None:
                continue
            if key in values:
                first = key_marks[key]
                self.problems.append(
                    _problem(
                        self.source,
                        key_mark.line,
                        key_mark.column,
                        join(path, key),
                        f"duplicate key '{key}' (first written at line {first.line}); "
                        "keep only one",
                    )
                )
                continue
            key_marks[key] = key_mark
            values[key] = self.convert(value_node, join(path, key))
        return Node(values, self.mark(yaml_node), key_marks)

    def _key(self, key_node: yaml.Node, mark: Mark, path: str) -> str | None:
        if isinstance(key_node, yaml.ScalarNode):
            return str(key_node.value)
        self.problems.append(
            _problem(self.source, mark.line, mark.column, path, "mapping keys must be plain text")
        )
        return None
