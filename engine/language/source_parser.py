"""A ``subscribe``'s ``source`` node to a ``SourceSpec``: which broker, connection and
destination feed the subscription, and the templates that make a message an event.

Part of the parser (``engine.language.transition_parser`` calls ``parse_source``). Listening
belongs to ``engine.sources``; the templates are rendered there, over ``message`` only.
"""

from __future__ import annotations

from typing import Any

from engine.expressions import is_template
from engine.language import vocabulary as v
from engine.language.instruction_parser import read_connection
from engine.language.limits import shorten
from engine.language.model import SourceSpec
from engine.language.reading import Reader
from engine.language.yamlnodes import Node, join

DEFAULT_GROUP = "async_states"
# The keys every broker's source takes (the destination keys are per broker).
_SHARED = frozenset({"broker", "connection", "event", "correlation", "id"})
_TEMPLATES = ("event", "correlation", "id")


def parse_source(reader: Reader, node: Node, path: str) -> SourceSpec | None:
    """Read ``subscribe.source``; problems are reported on ``reader``."""
    fields = reader.fields(node, path, v.SOURCE_KEYS, "source")
    if fields is None:
        return None
    broker = reader.need(fields, "broker", node, path, "source", _broker(reader))
    if broker is not None:
        _refuse_foreign_keys(reader, node, path, fields, broker)
        _check_destination(reader, node, path, fields, broker)
    texts = {key: reader.get(fields, key, path, _plain(reader))
             for key in ("queue", "exchange", "binding", "channel", "stream", "topic",
                         "subject")}
    if broker == "amqp" and texts["exchange"] and not texts["binding"]:
        texts["binding"] = "#"
    return SourceSpec(
        broker=broker or "",
        connection=reader.need(fields, "connection", node, path, "source",
                               read_connection(reader, broker)),
        group=reader.get(fields, "group", path, reader.name, DEFAULT_GROUP),
        **texts,
        **{key: reader.get(fields, key, path, _message_template(reader)) for key in _TEMPLATES},
    )


def _broker(reader: Reader) -> Any:
    return lambda node, path, what: reader.choice(node, path, what, v.BROKERS)


def _refuse_foreign_keys(reader: Reader, node: Node, path: str, fields: dict[str, Node],
                         broker: str) -> None:
    allowed = _SHARED | v.SOURCE_DESTINATIONS[broker]
    for key in fields.keys() - allowed:
        takes = ", ".join(sorted(v.SOURCE_DESTINATIONS[broker]))
        reader.error(node.key_marks[key], join(path, key),
                     f"{broker} sources have no '{key}' (they take {takes}); remove it")


def _check_destination(reader: Reader, node: Node, path: str, fields: dict[str, Node],
                       broker: str) -> None:
    """Each broker's destination rule; the message says what to write instead."""
    has = fields.keys()
    problem = None
    if broker == "amqp" and not has & {"queue", "exchange"}:
        problem = "an amqp source needs 'queue', or 'exchange' (with 'binding')"
    elif broker == "amqp" and "binding" in has and "exchange" not in has:
        problem = "'binding' binds the queue to an 'exchange': name the exchange too"
    elif broker == "redis" and len(has & {"channel", "stream"}) != 1:
        problem = "a redis source needs exactly one of 'channel' (pub/sub) or 'stream'"
    elif broker == "redis" and "group" in has and "stream" not in has:
        problem = "'group' is the consumer group of a redis 'stream'; a channel has none"
    elif broker == "mqtt" and "topic" not in has:
        problem = "an mqtt source needs 'topic'"
    elif broker == "nats" and "subject" not in has:
        problem = "a nats source needs 'subject' (and 'stream' for a JetStream consumer)"
    if problem:
        reader.error(node.mark, path, problem)


def _plain(reader: Reader) -> Any:
    """A destination: plain text, since one listener serves every run."""

    def read(node: Node, path: str, what: str) -> str | None:
        text = reader.string(node, path, what)
        if text is not None and is_template(text):
            reader.error(node.mark, path, f"source {what} '{shorten(text)}' cannot be a "
                         "template: one listener serves every run; write it out")
            return None
        if text is not None and what == "topic" and text.startswith("$share/"):
            reader.error(node.mark, path, "write the topic without '$share/...': the "
                         "listener shares it among the clusters in 'group' itself")
            return None
        return text

    return read


def _message_template(reader: Reader) -> Any:
    """A template over ``message``, whose value is stored with the event."""

    def read(node: Node, path: str, what: str) -> str | None:
        text = reader.template(node, path, what)
        return text if text is None or reader.stored(node, path, f"source {what}") else None

    return read
