"""The ``lifecycle:`` key of a task, and the deployment's ``ASYNC_STATES_LIFECYCLE`` setting.

Both say where a run's lifecycle events go (``engine.lifecycle``) in the same words, read by
the same code: a named connection (never a URL: the URL, which may carry a password or a
webhook's token, stays in the environment) and, for a broker, the destination and that
broker's options. What the connection is (a broker or a webhook) comes from its URL's scheme,
so it is checked here against the environment of the process that loads the task: a
connection that is not configured is a warning (the workers' environment may differ), a
scheme nothing publishes to is an error, as is a key the connection's kind does not take.
"""

from __future__ import annotations

from typing import Any

from engine import connections
from engine.errors import Problem, Severity
from engine.language import vocabulary as v
from engine.language.instruction_parser import qos_reader
from engine.language.limits import shorten
from engine.language.model import Lifecycle
from engine.language.reading import Reader
from engine.language.yamlnodes import Node, join, read_yaml

WEBHOOK = "webhook"
# The keys a webhook connection refuses: it POSTs to its URL, with nothing to choose.
WEBHOOK_REFUSED = ("to", *v.BROKER_ONLY_KEYS)


def lifecycle_reader(reader: Reader) -> Any:
    """The ``Reader.get`` callback that reads a ``lifecycle`` mapping."""

    def read(node: Node, path: str, what: str) -> Lifecycle | None:
        fields = reader.fields(node, path, v.LIFECYCLE_KEYS, "lifecycle")
        if fields is None:
            return None
        name = reader.need(fields, "connection", node, path, "lifecycle", reader.string)
        if name is None or not _name_ok(reader, fields["connection"], join(path, "connection"),
                                        name):
            return None
        kind = _kind(reader, fields["connection"], join(path, "connection"), name)
        _check_keys(reader, node, path, fields, kind)
        return Lifecycle(
            connection=name,
            to=reader.get(fields, "to", path, reader.string, ""),
            exchange=reader.get(fields, "exchange", path, reader.string),
            qos=reader.get(fields, "qos", path, qos_reader(reader), 1),
            retain=reader.get(fields, "retain", path, reader.boolean, False),
            jetstream=reader.get(fields, "jetstream", path, reader.boolean, False),
            stream=reader.get(fields, "stream", path, reader.boolean, False),
        )

    return read


def parse_lifecycle(text: str, source: str) -> tuple[Lifecycle | None, list[Problem]]:
    """The deployment's destination, written as a YAML (or JSON) mapping in ``text``.

    Returns:
        The destination (None when ``text`` is blank or has errors) and the problems.
    """
    if not text.strip():
        return None, []
    root, problems = read_yaml(text, source)
    if root is None:
        return None, problems
    reader = Reader(source, read_problems=problems)
    found = lifecycle_reader(reader)(root, "", "lifecycle")
    problems = [*problems, *reader.problems]
    if any(p.severity is Severity.ERROR for p in problems):
        return None, problems
    return found, problems


def kind_of(scheme: str) -> str | None:
    """``webhook`` for http(s), the broker for a broker's scheme, else None."""
    if scheme in ("http", "https"):
        return WEBHOOK
    return connections.SCHEMES.get(scheme)


def _name_ok(reader: Reader, node: Node, path: str, name: str) -> bool:
    if connections.NAME_PATTERN.match(name):
        return True
    reader.error(
        node.mark, path,
        f"connection name '{shorten(name)}' must be lower-case letters, digits and _, "
        "starting with a letter (the environment variable is "
        f"{connections.CONNECTION_PREFIX}<NAME>); a URL never goes in a task file",
    )
    return False


def _kind(reader: Reader, node: Node, path: str, name: str) -> str | None:
    """The configured connection's kind; None (after saying why) when it cannot be known."""
    configured = connections.configured()
    if name not in configured:
        reader.error(
            node.mark, path,
            f"connection '{name}' is not configured here ({connections.env_name(name)} is not "
            "set); the cluster's environment must set it to a broker's URL (amqp, mqtt, nats, "
            "redis) or a webhook's (http, https)",
            severity=Severity.WARNING,
        )
        return None
    scheme = configured[name]
    kind = kind_of(scheme)
    if kind is None:
        reader.error(
            node.mark, path,
            f"connection '{name}' is a {scheme or 'scheme-less'} URL, which lifecycle events "
            "cannot be published to; use amqp, mqtt, nats, redis (a broker) or http, https (a "
            f"webhook) in {connections.env_name(name)}",
        )
    return kind


def _check_keys(
    reader: Reader, node: Node, path: str, fields: dict[str, Node], kind: str | None
) -> None:
    if kind == WEBHOOK:
        for key in WEBHOOK_REFUSED:
            if key in fields:
                reader.error(node.key_marks[key], join(path, key),
                             f"{key} is not for a webhook connection (events are POSTed to its "
                             "URL); remove it")
        return
    for key, only in v.BROKER_ONLY_KEYS.items():
        if key in fields and kind not in (only, None):
            reader.error(node.key_marks[key], join(path, key),
                         f"{key} is only for the {only} broker, and this connection is {kind}; "
                         "remove it")
    if kind is not None and "to" not in fields:
        reader.error(node.mark, path,
                     f"lifecycle needs 'to' for a {kind} connection: the "
                     f"{_DESTINATION[kind]} events are published to")


_DESTINATION = {"amqp": "routing key", "mqtt": "topic", "nats": "subject", "redis": "channel"}

