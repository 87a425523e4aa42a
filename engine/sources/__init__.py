"""Broker sources of ``subscribe``: a message a broker delivers becomes an event.

This package owns everything between a broker and the events service: one module per broker
consumes (``amqp``, ``mqtt``, ``nats``, ``redis``), ``listener`` keeps one source connected
on its own thread (reconnecting with a capped backoff, counting what it did), and this module
turns a message into events (``to_events``). Storing the event, and finding the runs it
wakes, is the events service's: the listener hands it the events through ``deliver`` and
acknowledges the message only when that call returned, so an acknowledged message is stored.

Each broker's message arrives as an ``Incoming``: the body's bytes, its headers, the
``topic`` it came by (routing key, topic, subject, channel or stream) and the id the broker
or the publisher gave it. The source's templates see it as ``message``: ``message.body`` (the
body as JSON, or as text when it is not JSON), ``message.text``, ``message.headers``,
``message.topic`` and ``message.id``.

A message that cannot become an event (too large, not UTF-8, a template that fails or
spends its budget) is *poison*: it is acknowledged and recorded as the listener's error,
never redelivered forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.budgets import TemplateLimits
from engine.errors import EngineError, ExpressionError
from engine.expressions import render

# Longest event id we store (the Event.key column holds 200 characters).
MAX_KEY_CHARS = 200
# Longest event name (Event.name) and correlation value (Event.correlation): a longer one
# would fail its INSERT on every redelivery, so the message is poison instead.
MAX_NAME_CHARS = 200
MAX_CORRELATION_CHARS = 500


class PoisonMessage(EngineError):
    """A message that cannot become an event; acknowledged and reported, not retried."""

    code = "poison_message"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as a broker delivered it."""

    body: bytes
    topic: str
    headers: Mapping[str, str]
    id: str | None = None  # the publisher's or the broker's id, when the message has one


@dataclass(frozen=True, slots=True)
class EventMapping:
    """How one subscription makes events of a source's messages: the event's name (plain,
    or a template over ``message``), and its correlation and id templates."""

    event: str
    correlation: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What the events service stores for one message."""

    name: str
    key: str
    correlation: str | None
    payload: Any


Deliver = Callable[[list[EventDraft]], list[bool]]


def to_events(message: Incoming, mappings: Iterable[EventMapping], *, max_bytes: int,
              limits: TemplateLimits) -> list[EventDraft]:
    """The events ``message`` makes, one per distinct mapping (the same name and id once).

    Raises:
        PoisonMessage: the body is over ``max_bytes`` (``MAX_EVENT_BYTES``) or not UTF-8, or a
            template failed or spent its budget.
    """
    if len(message.body) > max_bytes:
        raise PoisonMessage(f"a message of {len(message.body):,} bytes on {message.topic!r} "
                            f"is over MAX_EVENT_BYTES={max_bytes:,}")
    context = {"message": _context(message)}
    drafts: dict[str, EventDraft] = {}
    for mapping in mappings:
        draft = _draft(message, mapping, context, limits)
        drafts.setdefault(draft.key, draft)
    return list(drafts.values())


def _context(message: Incoming) -> dict[str, Any]:
    try:
        text = message.body.decode()
    except UnicodeDecodeError:
        raise PoisonMessage(f"a message on {message.topic!r} is not UTF-8 text") from None
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:  # not JSON: the text itself (RecursionError cannot pass: size-bound)
        body = text
    return {"body": body, "text": text, "headers": dict(message.headers),
            "topic": message.topic, "id": message.id}


def _draft(message: Incoming, mapping: EventMapping, context: dict[str, Any],
           limits: TemplateLimits) -> EventDraft:
    try:
        name, correlation, given_id = render(
            [mapping.event, mapping.correlation, mapping.id], context, limits=limits)
    except ExpressionError as exc:
        raise PoisonMessage(f"a message on {message.topic!r}: {exc}") from None
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise PoisonMessage(f"a message on {message.topic!r}: the event name rendered to "
                            f"{str(name)[:80]!r}, not a string of 1 to {MAX_NAME_CHARS} "
                            "characters")
    ident = _text(given_id) if mapping.id is not None else (message.id or _digest(message))
    if not ident:
        raise PoisonMessage(f"a message on {message.topic!r}: its id rendered empty")
    correlation = None if correlation is None else _text(correlation)
    if correlation is not None and len(correlation) > MAX_CORRELATION_CHARS:
        raise PoisonMessage(f"a message on {message.topic!r}: its correlation value has "
                            f"{len(correlation):,} characters, over {MAX_CORRELATION_CHARS}")
    return EventDraft(name=name, key=event_key(name, ident), correlation=correlation,
                      payload=context["message"]["body"])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _digest(message: Incoming) -> str:
    """The id of a message that carries none: what it says, where (two identical messages
    count as one: give messages ids where that matters)."""
    parts = json.dumps([message.topic, sorted(message.headers.items())]).encode()
    return "sha256:" + hashlib.sha256(parts + b"\0" + message.body).hexdigest()


def event_key(name: str, ident: str) -> str:
    """The stored event id: ``name:id``, or a digest of it when that is too long."""
    key = f"{name}:{ident}"
    if len(key) <= MAX_KEY_CHARS:
        return key
    return f"{name[:100]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def consumer_of(broker: str) -> Any:
    """The ``consume`` function of ``broker`` (imported on demand: each pulls in a driver)."""
    from engine.sources import amqp, mqtt, nats, redis

    return {"amqp": amqp.consume, "mqtt": mqtt.consume, "nats": nats.consume,
            "redis": redis.consume}[broker]


def sources_of(tasks: Iterable[Any]) -> dict[tuple, tuple[Any, frozenset[EventMapping]]]:
    """Every distinct source the ``TaskDef``s declare, with the mappings of the subscriptions
    that name it: ``{source.key: (source, mappings)}``."""
    found: dict[tuple, tuple[Any, set[EventMapping]]] = {}
    for task in tasks:
        for state in task.states:
            for transition in state.transitions:
                source = getattr(transition.condition, "source", None)
                if source is None:
                    continue
                mapping = EventMapping(event=source.event or transition.condition.event,
                                       correlation=source.correlation, id=source.id)
                found.setdefault(source.key, (source, set()))[1].add(mapping)
    return {key: (source, frozenset(mappings)) for key, (source, mappings) in found.items()}
