"""A run's lifecycle as CloudEvents 1.0, and publishing one event to its destination.

Every committed transition row of a run becomes one event (structured JSON, CloudEvents 1.0):
its first row (trigger ``start``) is ``async_states.run.started``, the row that ends the run
is ``async_states.run.finished`` (with the outcome), every other one is
``async_states.run.transition``. The event's ``id`` is ``<run id>.<seq>``: the row's place in
the run's history, so an event published twice (delivery is at least once) carries the same
id, and a receiver deduplicates on it. The events are built when their rows are committed and
stored beside them (the outbox), so what is published is exactly what was committed.

Publishing goes through a named connection (``engine.connections``): a broker's, through the
``message`` instruction's publishers (the event id is the message id), or an http(s) URL, a
webhook, which gets a ``POST`` with ``Content-Type: application/cloudevents+json``. Errors name
the connection, never its URL (which may carry a password or a token).

This module decides nothing about when to publish or retry: ``taskapp.lifecycle`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import requests

from engine import connections
from engine.errors import InstructionError
from engine.instructions import instruction_error
from engine.language.lifecycle_parser import WEBHOOK, kind_of
from engine.language.model import Lifecycle, MessageSpec
from engine.runs import RunStatus, Trigger

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"


class EventType(StrEnum):
    """The ``type`` of a lifecycle event."""

    STARTED = "async_states.run.started"
    TRANSITION = "async_states.run.transition"
    FINISHED = "async_states.run.finished"


@dataclass(frozen=True, slots=True)
class Row:
    """What one committed transition row says, as the events need it."""

    seq: int
    from_state: str
    to_state: str
    trigger: str
    at: datetime
    entry: int = 0
    time_in_state: float = 0.0


@dataclass(frozen=True, slots=True)
class RunFacts:
    """The run the rows belong to, as the commit that wrote them left it."""

    id: str
    task: str
    version: int
    status: RunStatus
    error: dict[str, Any] | None = None


def events_of(run: RunFacts, rows: Sequence[Row], source: str) -> list[dict[str, Any]]:
    """The lifecycle events of ``rows``, committed together for ``run``, in order.

    Args:
        run: the run after the commit (its status tells whether the last row ended it).
        rows: the transition rows the commit wrote, in ``seq`` order.
        source: the deployment's event source (``LIFECYCLE_SOURCE``); the task is appended.
    """
    events = []
    for index, row in enumerate(rows):
        ends = index == len(rows) - 1 and run.status.finished
        for event_type, suffix in _types(row, ends):
            events.append(_event(run, row, event_type, suffix, source))
    return events


def _types(row: Row, ends: bool) -> Iterator[tuple[EventType, str]]:
    """A row's event types, with the id suffix of each: one, except for a run whose start
    state is final (it starts and finishes in one row, and says both)."""
    started = row.trigger == Trigger.START
    if started:
        yield EventType.STARTED, ""
    if ends:
        yield EventType.FINISHED, ".finished" if started else ""
    elif not started:
        yield EventType.TRANSITION, ""


def _event(
    run: RunFacts, row: Row, event_type: EventType, suffix: str, source: str
) -> dict[str, Any]:
    finished = event_type is EventType.FINISHED
    data: dict[str, Any] = {
        "run_id": run.id, "task": run.task, "version": run.version, "seq": row.seq,
        "from_state": row.from_state or None, "to_state": row.to_state or None,
        "trigger": row.trigger, "entry": row.entry, "time_in_state": row.time_in_state,
        "status": str(run.status) if finished else str(RunStatus.RUNNING),
    }
    if finished:
        data["outcome"] = str(run.status)
        data["error"] = run.error
    return {
        "specversion": SPEC_VERSION,
        "type": str(event_type),
        "source": f"{source.rstrip('/')}/tasks/{run.task}",
        "id": f"{run.id}.{row.seq}{suffix}",
        "time": _rfc3339(row.at),
        "subject": run.id,
        "datacontenttype": "application/json",
        "data": data,
    }


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def destination_key(destination: Lifecycle) -> str:
    """A destination as stored with its events: canonical JSON of what differs from the
    defaults (a connection name and options; never a URL)."""
    defaults = Lifecycle(connection="")
    fields = {
        name: getattr(destination, name) for name in Lifecycle.__dataclass_fields__
        if name == "connection" or getattr(destination, name) != getattr(defaults, name)
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def destination_from_key(key: str) -> Lifecycle:
    """The destination ``destination_key`` wrote."""
    return Lifecycle(**json.loads(key))


def describe(destination: Lifecycle) -> str:
    """How messages, the health check and metrics name a destination."""
    where = f"connection '{destination.connection}'"
    return f"{where} → {destination.to}" if destination.to else where


def publish(destination: Lifecycle, event: dict[str, Any], timeout: float) -> None:
    """Publish ``event`` once; return when the receiver has it.

    Raises:
        InstructionError: the connection is not configured or serves nothing events go to,
            or the receiver did not take the event (its message names the connection).
    """
    url = connections.url_of(destination.connection)
    kind = kind_of(connections.scheme_of(url))
    label = f"connection {destination.connection!r}"
    payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    if kind == WEBHOOK:
        _post(url, label, payload, timeout)
    elif kind is not None:
        _to_broker(destination, kind, url, label, payload, event["id"], timeout)
    else:
        raise InstructionError(
            f"{label} is a {connections.scheme_of(url) or 'scheme-less'} URL, which lifecycle "
            "events cannot be published to (use amqp, mqtt, nats, redis, http or https); "
            f"fix {connections.env_name(destination.connection)}",
            error_class="error", retryable=False,
        )


def _to_broker(
    destination: Lifecycle, broker: str, url: str, label: str, payload: bytes,
    event_id: str, timeout: float,
) -> None:
    from engine.instructions import message

    spec = MessageSpec(
        broker=broker, to=destination.to, connection=destination.connection,
        exchange=destination.exchange, qos=destination.qos, retain=destination.retain,
        jetstream=destination.jetstream, stream=destination.stream,
    )
    # AMQP and MQTT carry the content type as the message's own; NATS and a Redis stream as
    # a header (a field); Redis pub/sub has nowhere to put one.
    headers = {"content-type": CONTENT_TYPE} if broker == "nats" or destination.stream else {}
    outgoing = message.Outgoing(to=destination.to, payload=payload, headers=headers,
                                message_id=event_id, content_type=CONTENT_TYPE)
    target = message.Target(broker=broker, url=url, label=label, to=destination.to)
    message.publisher(broker)(target, outgoing, spec, timeout)


def _post(url: str, label: str, payload: bytes, timeout: float) -> None:
    from engine.instructions.http import session

    try:
        response = session().post(url, data=payload, timeout=timeout,
                                  headers={"Content-Type": CONTENT_TYPE})
    except requests.Timeout as exc:
        raise instruction_error(f"webhook {label}: no answer in {timeout:g}s", "timeout") from exc
    except requests.RequestException as exc:
        # The driver's text quotes the URL's path and query, where a token may be: not shown.
        raise instruction_error(f"webhook {label}: cannot reach the receiver "
                                f"({type(exc).__name__})", "connection") from exc
    response.close()
    if not 200 <= response.status_code < 300:
        raise instruction_error(f"webhook {label}: the receiver answered "
                                f"{response.status_code}", "status")
