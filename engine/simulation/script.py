"""The script of a dry run: what the world does, read from YAML or JSON into frozen data.

A script says each instruction's reply by name (``instructions:``, keyed ``name`` or
``state/name``) or by kind and pattern (``calls:``), with one reply or a list of replies
(the n-th call of that instruction in the run gets the n-th; the last one repeats); the
events that arrive and when; the virtual time to run until; the secrets' stand-in values;
and, for ``simulate --check``, the outcome expected. It is read with the task reader's
bounded YAML reader (size, depth, nodes, aliases), so a hostile script ends in problems,
never in a library's exception. The vocabulary is listed once here (``SCRIPT_KEYS`` and
friends) and in ``docs/simulate.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import Problem
from engine.language import ReaderLimits, parse_duration
from engine.language.model import Mark
from engine.language.yamlnodes import Node, join, read_yaml
from engine.simulation.errors import ScriptError

SCRIPT_KEYS = frozenset({"input", "start", "until", "secrets", "instructions", "calls",
                         "events", "expect", "description", "seed"})
REPLY_KEYS = frozenset({"result", "status", "body", "headers", "error", "class"})
CALL_KEYS = frozenset({"kind", "url", "method", "reply", "replies"})
EVENT_KEYS = frozenset({"at", "name", "data", "correlation", "key"})
EXPECT_KEYS = frozenset({"status", "state", "data", "error"})
ERROR_CLASSES = frozenset({"connection", "timeout", "5xx", "429", "4xx", "status", "error"})
STATUSES = frozenset({"succeeded", "failed", "timed_out", "cancelled", "waiting"})

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
# A script that names no end runs until the task's deadline, else this long: a year of
# virtual time costs nothing unless the run keeps moving (the step bounds then apply).
DEFAULT_UNTIL = timedelta(days=365)
# The script reader's bounds: the task reader's, a script being no bigger than a task.
SCRIPT_LIMITS = ReaderLimits()


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the world: a result, an HTTP response (``status``), or an error."""

    result: Any = None
    status: int | None = None
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    error_class: str = "error"

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class CallRule:
    """Replies for every instruction of ``kind`` whose target matches ``url`` (a glob on
    the rendered URL, or a message's destination) and ``method``, when no name matches."""

    kind: str
    url: str = "*"
    method: str | None = None
    replies: tuple[Reply, ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    """An event that arrives ``at`` after the start. Without ``correlation`` it is addressed
    to the run itself (as ``POST /api/runs/<id>/events/`` does)."""

    at: timedelta
    name: str
    data: Any = None
    correlation: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Expect:
    """The outcome ``simulate --check`` compares with: each field set must match; ``data``
    matches when every key it names has that value (nested mappings alike)."""

    status: str | None = None
    state: str | None = None
    data: dict[str, Any] | None = None
    error: str | None = None  # the run error's ``code``


@dataclass(frozen=True, slots=True)
class Script:
    input: dict[str, Any] = field(default_factory=dict)
    start: datetime = DEFAULT_START
    until: timedelta | None = None  # None: the task's deadline, else DEFAULT_UNTIL
    secrets: tuple[tuple[str, str], ...] = ()
    instructions: tuple[tuple[str, tuple[Reply, ...]], ...] = ()
    calls: tuple[CallRule, ...] = ()
    events: tuple[ScriptedEvent, ...] = ()
    expect: Expect | None = None
    description: str = ""
    seed: int = 0  # of the jitter drawn for retry and poll delays: the same seed, the same times
    source: str = "<script>"


def parse_script(text: str, source: str = "<script>") -> Script:
    """Read a script (YAML, or JSON, which is YAML too).

    Raises:
        ScriptError: every problem found, each with its line and dotted path.
    """
    root, problems = read_yaml(text, source, SCRIPT_LIMITS)
    if root is None or problems:
        raise ScriptError(problems)
    reader = _Reader(source)
    script = reader.script(root)
    if reader.problems:
        raise ScriptError(reader.problems)
    return script


def script_from_data(data: Any, source: str = "<script>") -> Script:
    """A script from already-parsed JSON (the API's body).

    Raises:
        ScriptError: as ``parse_script``; problems carry no line numbers.
    """
    reader = _Reader(source)
    script = reader.script(_node(data, depth=0))
    if reader.problems:
        raise ScriptError(reader.problems)
    return script


def _node(value: Any, depth: int) -> Node:
    """Plain JSON as a ``Node`` tree (no marks). Depth is bounded by the caller's parser
    (the API's JSON limits); the guard only keeps this from recursing without end."""
    if depth > SCRIPT_LIMITS.max_depth:
        raise ScriptError([Problem("<script>", 0, 0, "", f"nested deeper than "
                                   f"{SCRIPT_LIMITS.max_depth} levels")])
    mark = Mark("<script>")
    if isinstance(value, dict):
        return Node({str(k): _node(v, depth + 1) for k, v in value.items()}, mark)
    if isinstance(value, list):
        return Node([_node(v, depth + 1) for v in value], mark)
    return Node(value, mark)


class _Reader:
    """Turns the node tree into a ``Script``, collecting problems instead of stopping."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, node: Node, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, node.mark.line, node.mark.column, path,
                                     message))

    def mapping(self, node: Node, path: str, keys: frozenset[str], what: str
                ) -> dict[str, Node] | None:
        if not node.is_mapping:
            self.problem(node, path, f"{what} must be a mapping")
            return None
        unknown = sorted(set(node.value) - keys)
        for key in unknown:
            self.problem(node, join(path, key), f"unknown key '{key}' in {what}; known: "
                         f"{', '.join(sorted(keys))}")
        return node.value

    def text(self, node: Node, path: str, what: str) -> str | None:
        if not isinstance(node.value, str) or not node.value:
            self.problem(node, path, f"{what} must be a non-empty string")
            return None
        return node.value

    def duration(self, node: Node, path: str, what: str) -> timedelta | None:
        try:
            return parse_duration(node.value)
        except ValueError as exc:
            self.problem(node, path, f"{what}: {exc}")
            return None

    # ------------------------------------------------------------------ the parts

    def script(self, root: Node) -> Script:
        fields = self.mapping(root, "", SCRIPT_KEYS, "a script") or {}
        parts: dict[str, Any] = {"source": self.source}
        readers = {"input": self._input, "start": self._start, "until": self._until,
                   "secrets": self._secrets, "instructions": self._instructions,
                   "calls": self._calls, "events": self._events, "expect": self._expect,
                   "description": self._description, "seed": self._seed}
        for key, node in fields.items():
            if key not in readers:
                continue  # reported by mapping()
            value = readers[key](node, key)
            if value is not None:
                parts[key] = value
        return Script(**parts)

    def _description(self, node: Node, path: str) -> str | None:
        return self.text(node, path, "description")

    def _seed(self, node: Node, path: str) -> int | None:
        value = node.plain()
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            self.problem(node, path, f"seed must be a whole number from 0 to {2**63 - 1:,} "
                                     "(it picks the jitter drawn for retry and poll delays)")
            return None
        return value

    def _input(self, node: Node, path: str) -> dict[str, Any] | None:
        if not node.is_mapping:
            self.problem(node, path, "input must be a mapping (the run's input object)")
            return None
        return node.plain()

    def _start(self, node: Node, path: str) -> datetime | None:
        text = self.text(node, path, "start")
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            self.problem(node, path, f"start '{text}' is not an ISO 8601 time")
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _until(self, node: Node, path: str) -> timedelta | None:
        return self.duration(node, path, "until (virtual time after the start)")

    def _secrets(self, node: Node, path: str) -> tuple[tuple[str, str], ...] | None:
        if not node.is_mapping:
            self.problem(node, path, "secrets must map names to stand-in values")
            return None
        found = []
        for name, value in node.value.items():
            if not isinstance(value.value, str):
                self.problem(value, join(path, name), "a secret's stand-in must be a string")
                continue
            found.append((name, value.value))
        return tuple(found)

    def _instructions(self, node: Node, path: str
                      ) -> tuple[tuple[str, tuple[Reply, ...]], ...] | None:
        if not node.is_mapping:
            self.problem(node, path, "instructions must map instruction names (or "
                         "'state/name') to a reply or a list of replies")
            return None
        return tuple((name, self.replies(value, join(path, name)))
                     for name, value in node.value.items())

    def replies(self, node: Node, path: str) -> tuple[Reply, ...]:
        if node.is_sequence:
            if not node.value:
                self.problem(node, path, "a list of replies needs at least one reply")
            return tuple(r for i, n in enumerate(node.value)
                         if (r := self.reply(n, f"{path}[{i}]")) is not None)
        reply = self.reply(node, path)
        return (reply,) if reply is not None else ()

    def reply(self, node: Node, path: str) -> Reply | None:
        fields = self.mapping(node, path, REPLY_KEYS, "a reply")
        if fields is None:
            return None
        forms = [k for k in ("result", "status", "error") if k in fields]
        if len(forms) != 1:
            self.problem(node, path, "a reply has exactly one of result (the instruction's "
                         "result), status (an HTTP response, with body and headers) or "
                         "error (a failure, with class)")
            return None
        plain = {k: v.plain() for k, v in fields.items()}
        if forms == ["error"]:
            return self._error_reply(fields, plain, path)
        if forms == ["status"]:
            return self._status_reply(fields, plain, path)
        if set(plain) - {"result"}:
            self.problem(node, path, "a result reply takes no other key")
        return Reply(result=plain["result"])

    def _error_reply(self, fields: dict[str, Node], plain: dict[str, Any], path: str
                     ) -> Reply | None:
        error_class = plain.get("class", "error")
        if not isinstance(error_class, str) or error_class not in ERROR_CLASSES:
            self.problem(fields["class"], join(path, "class"), f"unknown error class "
                         f"'{error_class}'; known: {', '.join(sorted(ERROR_CLASSES))}")
            return None
        return Reply(error=str(plain["error"]), error_class=error_class)

    def _status_reply(self, fields: dict[str, Node], plain: dict[str, Any], path: str
                      ) -> Reply | None:
        status = plain["status"]
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            self.problem(fields["status"], join(path, "status"),
                         "status must be an HTTP status code (100-599)")
            return None
        headers = plain.get("headers") or {}
        if not isinstance(headers, dict):
            self.problem(fields["headers"], join(path, "headers"), "headers must be a mapping")
            return None
        return Reply(status=status, body=plain.get("body"),
                     headers=tuple((str(k).lower(), str(v)) for k, v in headers.items()))

    def _calls(self, node: Node, path: str) -> tuple[CallRule, ...] | None:
        if not node.is_sequence:
            self.problem(node, path, "calls must be a list of {kind, url, method, reply}")
            return None
        rules = (self._call(n, f"{path}[{i}]") for i, n in enumerate(node.value))
        return tuple(r for r in rules if r is not None)

    def _call(self, node: Node, path: str) -> CallRule | None:
        fields = self.mapping(node, path, CALL_KEYS, "a call rule")
        if fields is None:
            return None
        if "kind" not in fields:
            self.problem(node, path, "a call rule needs a kind (http, rpc, db, message)")
            return None
        kind = self.text(fields["kind"], join(path, "kind"), "kind")
        answers = [k for k in ("reply", "replies") if k in fields]
        if len(answers) != 1:
            self.problem(node, path, "a call rule needs reply (one) or replies (a list)")
            return None
        url = self.text(fields["url"], join(path, "url"), "url") if "url" in fields else "*"
        method = fields.get("method")
        replies = self.replies(fields[answers[0]], join(path, answers[0]))
        if kind is None or url is None:
            return None
        return CallRule(kind=kind, url=url, replies=replies,
                        method=str(method.value).upper() if method is not None else None)

    def _events(self, node: Node, path: str) -> tuple[ScriptedEvent, ...] | None:
        if not node.is_sequence:
            self.problem(node, path, "events must be a list of {at, name, data, correlation}")
            return None
        events = (self._event(n, f"{path}[{i}]") for i, n in enumerate(node.value))
        return tuple(sorted((e for e in events if e is not None), key=lambda e: e.at))

    def _event(self, node: Node, path: str) -> ScriptedEvent | None:
        fields = self.mapping(node, path, EVENT_KEYS, "an event")
        if fields is None:
            return None
        if "name" not in fields:
            self.problem(node, path, "an event needs a name")
            return None
        name = self.text(fields["name"], join(path, "name"), "an event's name")
        at = self.duration(fields["at"], join(path, "at"), "at (after the start)") \
            if "at" in fields else timedelta(0)
        plain = {k: v.plain() for k, v in fields.items()}
        correlation, key = plain.get("correlation"), plain.get("key")
        if name is None or at is None:
            return None
        return ScriptedEvent(at=at, name=name, data=plain.get("data"),
                             correlation=None if correlation is None else str(correlation),
                             key=None if key is None else str(key))

    def _expect(self, node: Node, path: str) -> Expect | None:
        fields = self.mapping(node, path, EXPECT_KEYS, "expect")
        if fields is None:
            return None
        plain = {k: v.plain() for k, v in fields.items()}
        status = plain.get("status")
        if status is not None and (not isinstance(status, str) or status not in STATUSES):
            self.problem(fields["status"], join(path, "status"), f"unknown status "
                         f"'{status}'; known: {', '.join(sorted(STATUSES))}")
        data = plain.get("data")
        if data is not None and not isinstance(data, dict):
            self.problem(fields["data"], join(path, "data"), "expect.data must be a mapping")
            data = None
        for key in ("state", "error"):
            if key in plain and not isinstance(plain[key], str):
                self.problem(fields[key], join(path, key), f"expect.{key} must be a string")
        return Expect(status=status, state=plain.get("state"), data=data,
                      error=plain.get("error"))
