"""Instruction nodes to ``Instruction`` values: the kind's spec, options and retry policy.

Part of the parser (``engine.language.parser`` calls ``parse_instruction``; the poll condition
calls ``parse_spec``). Executing instructions belongs to ``engine.instructions``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from engine import connections
from engine.errors import Severity
from engine.language import vocabulary as v
from engine.language.limits import shorten
from engine.language.model import (
    NO_RETRY,
    DbSpec,
    HttpAuth,
    HttpSpec,
    Instruction,
    InstructionSpec,
    MessageSpec,
    RetryPolicy,
    RpcSpec,
    SetSpec,
)
from engine.language.reading import DOTTED_PATH, Reader, describe
from engine.language.yamlnodes import Node, join

DEFAULT_TIMEOUT = timedelta(seconds=30)


def parse_instruction(
    reader: Reader, node: Node, path: str, index: int, state: str
) -> Instruction | None:
    """Read one item of a state's ``instructions`` list."""
    if not node.is_mapping:
        reader.wrong(node, path, f"instruction {index} of state '{state}'", _KIND_HINT)
        return None
    kinds = [key for key in node.value if key in v.INSTRUCTION_KINDS]
    default_name = f"{kinds[0]}_{index}" if kinds else f"instruction_{index}"
    explicit = node.value.get("name")
    label = explicit.value if explicit and isinstance(explicit.value, str) else default_name
    what = f"instruction '{label}' of state '{state}'"
    fields = reader.fields(node, path, v.INSTRUCTION_KEYS, what)
    if not _one_kind(reader, node, path, kinds, what) or fields is None:
        return None
    kind = kinds[0]
    if kind == "set":
        _refuse_set_options(reader, node, path, what)
    return Instruction(
        kind=kind,
        name=reader.get(fields, "name", path, reader.name, default_name),
        spec=parse_spec(reader, kind, fields[kind], join(path, kind)),
        save_as=reader.get(fields, "save_as", path, reader.dotted_path),
        retry=reader.get(fields, "retry", path, _retry(reader), NO_RETRY),
        timeout=reader.get(fields, "timeout", path, reader.duration, DEFAULT_TIMEOUT),
        on_error=reader.get(fields, "on_error", path, reader.name),
        mark=node.mark,
    )


_KIND_HINT = "a mapping with one kind key (db, http, message, rpc or set)"


def _one_kind(reader: Reader, node: Node, path: str, kinds: list[str], what: str) -> bool:
    if not kinds:
        known = ", ".join(sorted(v.INSTRUCTION_KINDS))
        reader.error(node.mark, path, f"{what} has no kind; give exactly one of: {known}")
        return False
    if len(kinds) > 1:
        first, second = kinds[:2]
        reader.error(
            node.key_marks[second],
            join(path, second),
            f"{what} has two kinds, '{first}' and '{second}'; give one kind per instruction",
        )
        return False
    return True


def _refuse_set_options(reader: Reader, node: Node, path: str, what: str) -> None:
    for key in node.value:
        if key in v.SET_FORBIDDEN_OPTIONS:
            reader.error(
                node.key_marks[key],
                join(path, key),
                f"'{key}' is not allowed on a set instruction ({what}): "
                "set only writes the run's data, it cannot time out or fail",
            )


def parse_spec(reader: Reader, kind: str, node: Node, path: str) -> InstructionSpec | None:
    """Read the body of an instruction (or of a poll) of the given kind."""
    return _SPECS[kind](reader, node, path)


def _http(reader: Reader, node: Node, path: str) -> HttpSpec | None:
    fields = reader.fields(node, path, v.HTTP_KEYS, "http")
    if fields is None:
        return None
    if "json" in fields and "form" in fields:
        second = [key for key in node.value if key in ("json", "form")][1]
        reader.error(
            node.key_marks[second], join(path, second), "http takes json or form, not both"
        )
    return HttpSpec(
        url=reader.need(fields, "url", node, path, "http", reader.template),
        method=reader.get(fields, "method", path, _method(reader), "GET"),
        headers=reader.get(fields, "headers", path, reader.template_pairs, ()),
        query=reader.get(fields, "query", path, reader.template_pairs, ()),
        json=reader.get(fields, "json", path, _templates(reader)),
        form=reader.get(fields, "form", path, reader.template_pairs),
        auth=reader.get(fields, "auth", path, _auth(reader)),
        expect=reader.get(fields, "expect", path, _expect(reader), ()),
        max_response_bytes=reader.get(fields, "max_response_bytes", path, reader.integer, 1 << 20),
    )


def _rpc(reader: Reader, node: Node, path: str) -> RpcSpec | None:
    fields = reader.fields(node, path, v.RPC_KEYS, "rpc")
    if fields is None:
        return None
    protocol = reader.get(fields, "protocol", path, _choice(reader, v.RPC_PROTOCOLS), "jsonrpc")
    _refuse_other_protocols_keys(reader, node, path, fields, protocol)
    grpc = protocol == "grpc"
    return RpcSpec(
        url=None if grpc else reader.need(fields, "url", node, path, "rpc", reader.template),
        method=reader.need(
            fields, "method", node, path, "rpc", _grpc_method(reader) if grpc else reader.template
        ),
        params=reader.get(fields, "params", path, _templates(reader)),
        protocol=protocol,
        headers=reader.get(fields, "headers", path, reader.template_pairs, ()),
        auth=reader.get(fields, "auth", path, _auth(reader)),
        connection=reader.need(fields, "connection", node, path, "grpc rpc",
                               _connection(reader, "grpc")) if grpc else None,
        request=reader.get(fields, "request", path, _templates(reader)),
        metadata=reader.get(fields, "metadata", path, reader.template_pairs, ()),
        descriptor_set=reader.get(fields, "descriptor_set", path, _descriptor_set(reader)),
    )


def _refuse_other_protocols_keys(
    reader: Reader, node: Node, path: str, fields: dict[str, Node], protocol: str | None
) -> None:
    for key, only in v.PROTOCOL_ONLY_KEYS.items():
        if key in fields and protocol not in (only, None):
            reader.error(
                node.key_marks[key],
                join(path, key),
                f"{key} is only for rpc protocol {only}, not '{protocol}'; remove it",
            )


def descriptor_name_problem(name: str) -> str | None:
    """Why a ``descriptor_set`` name is refused whatever the disk holds, or ``None``.

    A task file may name any path, and the worker reads it: the name must be relative to
    the descriptor directory (``DESCRIPTOR_DIR``) and must not climb out of it with ``..``.
    (A symbolic link leading out is for the worker to see, on its own disk.)
    """
    if not name or "\0" in name:
        return "is not a file name"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor:
        return "must be a path relative to the descriptor directory (DESCRIPTOR_DIR)"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "must not climb out of the descriptor directory (DESCRIPTOR_DIR) with '..'"
    return None


def _descriptor_set(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        name = reader.string(node, path, what)
        problem = None if name is None else descriptor_name_problem(name)
        if problem is not None:
            reader.error(node.mark, path, f"descriptor_set '{shorten(name)}' {problem}")
            return None
        return name

    return read


GRPC_METHOD = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*/[A-Za-z_]\w*$")


def _grpc_method(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        name = reader.string(node, path, what)
        if name is not None and not GRPC_METHOD.match(name):
            reader.error(
                node.mark,
                path,
                f"grpc method '{shorten(name)}' must be the full method name, "
                "package.Service/Method (as grpcurl writes it)",
            )
            return None
        return name

    return read


def _message(reader: Reader, node: Node, path: str) -> MessageSpec | None:
    fields = reader.fields(node, path, v.MESSAGE_KEYS, "message")
    if fields is None:
        return None
    broker = reader.need(fields, "broker", node, path, "message", _choice(reader, v.BROKERS))
    _refuse_other_brokers_keys(reader, node, path, fields, broker)
    connection = reader.get(fields, "connection", path, _connection(reader, broker))
    _connection_or_url(reader, node, path, fields, "message")
    return MessageSpec(
        broker=broker,
        connection=connection,
        url=reader.get(fields, "url", path, reader.template),
        to=reader.need(fields, "to", node, path, "message", reader.template),
        body=reader.get(fields, "body", path, _templates(reader)),
        headers=reader.get(fields, "headers", path, reader.template_pairs, ()),
        exchange=reader.get(fields, "exchange", path, reader.template),
        qos=reader.get(fields, "qos", path, qos_reader(reader), 1),
        retain=reader.get(fields, "retain", path, reader.boolean, False),
        jetstream=reader.get(fields, "jetstream", path, reader.boolean, False),
        stream=reader.get(fields, "stream", path, reader.boolean, False),
    )


def _connection_or_url(
    reader: Reader, node: Node, path: str, fields: dict[str, Node], what: str
) -> None:
    if ("connection" in fields) == ("url" in fields):
        reader.error(
            node.mark,
            path,
            f"{what} needs exactly one of 'connection' (the name of a connection configured "
            "in the environment, the usual way) or 'url'",
        )


def _refuse_other_brokers_keys(
    reader: Reader, node: Node, path: str, fields: dict[str, Node], broker: str | None
) -> None:
    for key, only in v.BROKER_ONLY_KEYS.items():
        if key in fields and broker not in (only, None):
            reader.error(
                node.key_marks[key],
                join(path, key),
                f"{key} is only for the {only} broker, not '{broker}'; remove it",
            )


def _connection(reader: Reader, *speaks: str | None) -> Any:
    """A connection name, checked against the environment of the process that loads it: it
    must speak one of ``speaks`` (a broker, ``grpc``, a database system; None: unknown, as
    when the broker itself is misspelt)."""

    def read(node: Node, path: str, what: str) -> str | None:
        name = reader.string(node, path, what)
        if name is None:
            return None
        if not connections.NAME_PATTERN.match(name):
            reader.error(
                node.mark,
                path,
                f"connection name '{shorten(name)}' must be lower-case letters, digits and _, "
                "starting with a letter, at most 63 characters (the environment variable is "
                f"{connections.CONNECTION_PREFIX}<NAME>)",
            )
            return None
        _check_configured(reader, node, path, name, tuple(s for s in speaks if s))
        return name

    return read


def _check_configured(
    reader: Reader, node: Node, path: str, name: str, speaks: tuple[str, ...]
) -> None:
    scheme = connections.configured().get(name)
    if scheme is None:
        reader.error(
            node.mark,
            path,
            f"connection '{name}' is not configured here ({connections.env_name(name)} is not "
            "set); the workers' environment must set it",
            severity=Severity.WARNING,
        )
    elif speaks and connections.SCHEMES.get(scheme) not in speaks:
        reader.error(
            node.mark,
            path,
            f"connection '{name}' is a {scheme or 'scheme-less'} URL, which does not serve "
            f"{connections.served(speaks)}; name a connection whose URL scheme is "
            f"{connections.schemes_for(*speaks)}, or fix {connections.env_name(name)}",
        )


def qos_reader(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> int | None:
        if node.value in (0, 1, 2) and not isinstance(node.value, bool):
            return node.value
        reader.wrong(node, path, what, "0, 1 or 2")
        return None

    return read


def _db(reader: Reader, node: Node, path: str) -> DbSpec | None:
    fields = reader.fields(node, path, v.DB_KEYS, "db")
    if fields is None:
        return None
    _connection_or_url(reader, node, path, fields, "db")
    return DbSpec(
        connection=reader.get(
            fields, "connection", path, _connection(reader, *connections.DATABASES)
        ),
        url=reader.get(fields, "url", path, reader.template),
        query=reader.need(fields, "query", node, path, "db", _query(reader)),
        params=reader.get(fields, "params", path, reader.template_pairs, ()),
        fetch=reader.get(fields, "fetch", path, _choice(reader, v.FETCH_MODES), "all"),
    )


def _set(reader: Reader, node: Node, path: str) -> SetSpec | None:
    if not node.is_mapping or not node.value:
        reader.wrong(node, path, "set", "a non-empty mapping of dotted paths to values")
        return None
    for key in node.value:
        if not DOTTED_PATH.match(key):
            reader.error(
                node.key_marks[key],
                join(path, key),
                f"set key '{key}' must be a dotted path like 'greeting' or 'totals.count'",
            )
    values = reader.template_pairs(node, path, "set")
    reader.stored(node, path, "set value")
    return SetSpec(values=values)


_SPECS: dict[str, Any] = {
    "http": _http,
    "rpc": _rpc,
    "message": _message,
    "db": _db,
    "set": _set,
}


def _templates(reader: Reader) -> Any:
    return lambda node, path, _what: reader.templates(node, path)


def _choice(reader: Reader, choices: frozenset[str]) -> Any:
    return lambda node, path, what: reader.choice(node, path, what, choices)


def _method(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        # Methods are case-insensitive on the wire; accept `post` and store `POST`.
        upper = node.value.upper() if isinstance(node.value, str) else node.value
        return reader.choice(Node(upper, node.mark), path, "HTTP method", v.HTTP_METHODS)

    return read


def _query(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> str | None:
        text = reader.string(node, path, what)
        if text is not None and ("{{" in text or "{%" in text):
            reader.error(
                node.mark,
                path,
                "a db query is not a template: write %(name)s placeholders and pass the "
                "values in params",
            )
            return None
        return text

    return read


def _auth(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> HttpAuth | None:
        fields = reader.fields(node, path, v.AUTH_KEYS, "auth")
        if fields is None:
            return None
        if len(fields) != 1:
            reader.error(node.mark, path, "auth takes exactly one of basic or bearer")
            return None
        if "bearer" in fields:
            return HttpAuth("bearer", token=reader.template(fields["bearer"], path, "bearer"))
        return _basic(reader, fields["basic"], join(path, "basic"))

    return read


def _basic(reader: Reader, node: Node, path: str) -> HttpAuth | None:
    fields = reader.fields(node, path, v.BASIC_AUTH_KEYS, "basic auth")
    if fields is None:
        return None
    return HttpAuth(
        "basic",
        username=reader.need(fields, "username", node, path, "basic auth", reader.template),
        password=reader.need(fields, "password", node, path, "basic auth", reader.template),
    )


def _expect(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> tuple[int, ...] | None:
        items = node.value if node.is_sequence else [node]
        for item in items:
            code = item.value
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                reader.error(
                    item.mark,
                    path,
                    f"bad expect status {describe(code)}: use an HTTP status code from "
                    "100 to 599, or a list of them",
                )
                return None
        return tuple(item.value for item in items)

    return read


def _retry(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> RetryPolicy | None:
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            attempts = reader.integer(node, path, "retry")
            return RetryPolicy(max_attempts=attempts) if attempts else None
        if not node.is_mapping:
            reader.wrong(node, path, "retry", "a number of attempts or a mapping")
            return None
        fields = reader.fields(node, path, v.RETRY_KEYS, "retry")
        d = RetryPolicy()
        return RetryPolicy(
            max_attempts=reader.get(fields, "max_attempts", path, reader.integer, d.max_attempts),
            initial_delay=reader.get(
                fields, "initial_delay", path, reader.duration, d.initial_delay
            ),
            factor=reader.get(fields, "factor", path, _at_least(reader, 1.0), d.factor),
            max_delay=reader.get(fields, "max_delay", path, reader.duration, d.max_delay),
            jitter=reader.get(fields, "jitter", path, reader.boolean, d.jitter),
            retry_on=reader.get(fields, "retry_on", path, _retry_on(reader), d.retry_on),
        )

    return read


def _retry_on(reader: Reader) -> Any:
    def read(node: Node, path: str, what: str) -> tuple[str, ...] | None:
        items = node.value if node.is_sequence else [node]
        values = [
            reader.choice(Node(str(item.value), item.mark), path, "retry_on value", v.RETRY_ON)
            for item in items
        ]
        return None if None in values else tuple(values)

    return read


def _at_least(reader: Reader, minimum: float) -> Any:
    return lambda node, path, what: reader.number(node, path, what, minimum)


def read_connection(reader: Reader, *speaks: str | None) -> Any:
    """The connection-name reader for other parts of the parser (a ``subscribe`` source's
    ``connection``): the same checks as an instruction's."""
    return _connection(reader, *speaks)
