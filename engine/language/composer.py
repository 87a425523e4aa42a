"""Composing PyYAML's events into a ``Node`` tree without recursion, within the reader's limits.

PyYAML's own composer recurses once per nesting level (a few thousand ``[`` overflow Python's
stack) and lets aliases share nodes, so a "billion laughs" document costs nothing until
something walks it. This composer checks depth as each collection opens, counts every node
with aliases expanded, and refuses an alias to a collection still open (a cycle), each before
the work it would cause is done. ``yamlnodes`` owns the dialect (the loader, its resolvers) and
turns what this module raises into problems; ``scalars`` turns each scalar into a JSON value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from engine.errors import Problem
from engine.language.limits import MAX_PROBLEMS, ReaderLimits, over_limit, shorten
from engine.language.model import Mark
from engine.language.nodes import Node, join
from engine.language.scalars import scalar_value


def _problem(source: str, line: int, column: int, path: str, message: str) -> Problem:
    return Problem(source=source, line=line, column=column, path=path, message=message)


class Refused(Exception):
    """A structural limit or an alias error: reading stops, with this one problem."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.message)


_PLAIN_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SKIP = object()  # the pending key of a pair whose value is read and dropped


@dataclass(slots=True)
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    mark: Mark
    path: str
    anchor: str | None
    items: Any  # dict[str, Node] for a mapping, list[Node] for a sequence
    tag_problem: bool = False
    key_marks: dict[str, Mark] = field(default_factory=dict)
    key: Any = None  # a mapping's pending key: None (expecting a key), a str, or _SKIP
    key_mark: Mark | None = None
    size: int = 1  # nodes below and including this one, aliases expanded


@dataclass(slots=True)
class _Anchor:
    node: Node | None  # None while the anchored collection is still open
    size: int
    mark: Mark
    raw: str | None = None  # a scalar's text as written, for use as a key


class Composer:
    """Builds ``Node`` trees from the parser's events without recursion, within limits.

    PyYAML's own composer recurses once per nesting level (a few thousand ``[`` overflow
    Python's stack), and expands nothing but lets aliases share nodes, so a "billion laughs"
    document costs nothing until something walks it. This composer checks depth as each
    collection opens, counts every node with aliases expanded, and refuses an alias to a
    collection still open (a cycle) — each before the work it would cause is done. Aliases
    still share their ``Node``: the counted size is what later walks cost.
    """

    def __init__(self, loader: yaml.SafeLoader, source: str, limits: ReaderLimits):
        self.loader = loader
        self.source = source
        self.limits = limits
        self.problems: list[Problem] = []
        self.anchors: dict[str, _Anchor] = {}
        self.stack: list[_Open] = []
        self.nodes = 0
        self.aliases = 0

    def mark(self, event: yaml.Event) -> Mark:
        start = event.start_mark
        return Mark(self.source, start.line + 1, start.column + 1)

    def report(self, mark: Mark, path: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(_problem(self.source, mark.line, mark.column, path, message))

    def refuse(self, mark: Mark, path: str, message: str) -> Refused:
        return Refused(_problem(self.source, mark.line, mark.column, path, message))

    def single_document(self) -> Node | None:
        self.loader.get_event()  # stream start
        root = None
        if not self.loader.check_event(yaml.StreamEndEvent):
            self.loader.get_event()  # document start
            root = self.document()
            self.loader.get_event()  # document end
        if not self.loader.check_event(yaml.StreamEndEvent):
            second = self.mark(self.loader.get_event())
            raise self.refuse(second, "", "YAML syntax error: the file holds more than one YAML "
                              "document; put one task per file")
        return root

    def document(self) -> Node:
        while True:
            event = self.loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                self.open(event)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                node, size, raw = self.close(), self.stack[-1].size, None
                self.stack.pop()
            elif isinstance(event, yaml.AliasEvent):
                node, size, raw = self.alias(event)
            else:
                node, size, raw = self.scalar(event), 1, event.value
            if not self.stack:
                return node
            self.attach(node, size, raw)

    def child_path(self) -> str:
        if not self.stack:
            return ""
        parent = self.stack[-1]
        if isinstance(parent.items, list):
            return f"{parent.path}[{len(parent.items)}]"
        return join(parent.path, parent.key) if isinstance(parent.key, str) else parent.path

    def count(self, size: int, mark: Mark, path: str) -> None:
        self.nodes += size
        if self.nodes > self.limits.max_nodes:
            what = "the document has too many values (aliases count as the values they repeat)"
            raise self.refuse(mark, path, over_limit(self.limits, "max_nodes", what))

    def open(self, event: yaml.CollectionStartEvent) -> None:
        mark, path = self.mark(event), self.child_path()
        if len(self.stack) >= self.limits.max_depth:
            what = "mappings and lists are nested too deeply"
            raise self.refuse(mark, path, over_limit(self.limits, "max_depth", what))
        self.count(1, mark, path)
        mapping = isinstance(event, yaml.MappingStartEvent)
        opened = _Open(mark, path, event.anchor, {} if mapping else [])
        if event.tag not in _PLAIN_TAGS:
            self.report(mark, path, f"unsupported YAML: the tag '{shorten(event.tag)}' is not "
                        "allowed")
            opened.tag_problem = True
        if event.anchor is not None:
            self.define(event.anchor, _Anchor(None, 0, mark), mark, path)
        self.stack.append(opened)

    def close(self) -> Node:
        opened = self.stack[-1]
        if opened.tag_problem:
            node = Node(None, opened.mark)
        else:
            node = Node(opened.items, opened.mark, opened.key_marks)
        if opened.anchor is not None:
            self.anchors[opened.anchor] = _Anchor(node, opened.size, opened.mark)
        return node

    def define(self, anchor: str, entry: _Anchor, mark: Mark, path: str) -> None:
        first = self.anchors.get(anchor)
        if first is not None:
            raise self.refuse(mark, path, f"the anchor '&{shorten(anchor)}' is defined twice "
                              f"(first at line {first.mark.line}); give each anchor its own name")
        self.anchors[anchor] = entry

    def alias(self, event: yaml.AliasEvent) -> tuple[Node, int, str | None]:
        mark, path = self.mark(event), self.child_path()
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            what = "the file uses too many aliases (*name)"
            raise self.refuse(mark, path, over_limit(self.limits, "max_aliases", what))
        anchor = self.anchors.get(event.anchor)
        name = shorten(event.anchor)
        if anchor is None:
            raise self.refuse(mark, path, f"the alias '*{name}' has no anchor '&{name}' before "
                              "it; define the anchor first")
        if anchor.node is None:
            raise self.refuse(mark, path, f"the alias '*{name}' is inside the value it repeats "
                              "(a recursive alias); a task file cannot hold a cycle")
        self.count(anchor.size, mark, path)
        return anchor.node, anchor.size, anchor.raw

    def scalar(self, event: yaml.ScalarEvent) -> Node:
        mark, path = self.mark(event), self.child_path()
        self.count(1, mark, path)
        node = Node(self.scalar_value(event, mark, path), mark)
        if event.anchor is not None:
            self.define(event.anchor, _Anchor(node, 1, mark, event.value), mark, path)
        return node

    def scalar_value(self, event: yaml.ScalarEvent, mark: Mark, path: str) -> Any:
        if self.expecting_key():
            return event.value  # keys are read as written: `on:` stays 'on'
        if len(event.value) > self.limits.max_string_chars:
            what = f"this value is too long ({len(event.value):,} characters)"
            self.report(mark, path, over_limit(self.limits, "max_string_chars", what))
            return None
        value, reason = scalar_value(self.loader, event)
        if reason is not None:
            self.report(mark, path, reason)
        return value

    def expecting_key(self) -> bool:
        parent = self.stack[-1] if self.stack else None
        return parent is not None and isinstance(parent.items, dict) and parent.key is None

    def attach(self, node: Node, size: int, raw: str | None) -> None:
        parent = self.stack[-1]
        parent.size += size
        if isinstance(parent.items, list):
            parent.items.append(node)
        elif parent.key is None:
            parent.key, parent.key_mark = self.key(parent, node, raw), node.mark
        else:
            if parent.key is not _SKIP:
                parent.items[parent.key] = node
                parent.key_marks[parent.key] = parent.key_mark
            parent.key = None

    def key(self, parent: _Open, node: Node, raw: str | None) -> Any:
        """The key a mapping's next value goes under, or ``_SKIP`` when it has none."""
        if raw is None or node.is_mapping or node.is_sequence:
            self.report(node.mark, parent.path, "mapping keys must be plain text")
            return _SKIP
        path = join(parent.path, shorten(raw))
        if len(raw) > self.limits.max_key_chars:
            what = f"this key is too long ({len(raw):,} characters)"
            self.report(node.mark, path, over_limit(self.limits, "max_key_chars", what))
            return _SKIP
        first = parent.key_marks.get(raw)
        if first is not None:
            self.report(node.mark, join(parent.path, raw), f"duplicate key '{shorten(raw)}' "
                        f"(first written at line {first.line}); keep only one")
            return _SKIP
        return raw
