"""One listener: a thread that keeps one source connected and turns its messages into events.

The broker module's ``consume`` does the talking: it connects, calls ``connected()``, hands
each message to ``handle`` and acknowledges it when ``handle`` returned; it returns when
``stop`` is set and raises when the connection fails. This thread calls it again after a
failure, waiting a capped, doubling backoff (``BACKOFF_FIRST`` to ``max_backoff``), so a
broker that restarts is found again within seconds and one that stays down costs a connect
attempt every ``max_backoff``.

``handle`` makes the message's events (``engine.sources.to_events``) and ``deliver``s them;
a poison message is counted and reported, then acknowledged. Anything else ``deliver``
raises (the database is away) propagates into ``consume``, so the message is *not*
acknowledged: the broker redelivers it on the next connection, and its event id drops it if
it was stored after all.

``state()`` is what ``/api/health/`` and ``/metrics`` show: never a URL, never a password.
``configured`` is False while the source's connection is not defined in the environment (a
task file loaded where its broker is not wanted); the listener keeps looking for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from engine import connections
from engine.budgets import TemplateLimits
from engine.language.model import SourceSpec
from engine.sources import Deliver, EventMapping, Incoming, PoisonMessage, to_events

log = logging.getLogger("async_states.listeners")

BACKOFF_FIRST = 0.5
# Characters of an error kept in the listener's state.
ERROR_CHARS = 300


class Consume(Protocol):
    def __call__(self, source: SourceSpec, url: str, handle: Callable[[Incoming], None],
                 stop: threading.Event, connected: Callable[[], None]) -> None: ...


def describe(source: SourceSpec) -> str:
    """How messages and the health page name a source (its connection, never its URL)."""
    where = {
        "amqp": lambda s: (f"queue {s.queue!r}" if s.queue else "")
        + (f" exchange {s.exchange!r} binding {s.binding!r}" if s.exchange else ""),
        "redis": lambda s: (f"stream {s.stream!r} group {s.group!r}" if s.stream
                            else f"channel {s.channel!r}"),
        "mqtt": lambda s: f"topic {s.topic!r} group {s.group!r}",
        "nats": lambda s: (f"stream {s.stream!r} subject {s.subject!r} durable {s.group!r}"
                           if s.stream else f"subject {s.subject!r} group {s.group!r}"),
    }[source.broker](source)
    return f"{source.broker} connection {source.connection!r} {where.strip()}"


class Listener(threading.Thread):
    """Keeps ``source`` connected until ``stop()``; see the module's docstring."""

    def __init__(self, source: SourceSpec, mappings: frozenset[EventMapping], *,
                 consume: Consume, deliver: Deliver, max_bytes: int, limits: TemplateLimits,
                 max_backoff: float = 10.0, on_exit: Callable[[], None] | None = None) -> None:
        self.label = describe(source)
        super().__init__(name=f"listener {self.label}"[:60], daemon=True)
        self.source = source
        self.mappings = mappings  # replaced whole when definitions change (an atomic swap)
        self._consume, self._deliver = consume, deliver
        self._max_bytes, self._limits, self._max_backoff = max_bytes, limits, max_backoff
        self._on_exit = on_exit
        self._stop_event = threading.Event()
        self._delay = BACKOFF_FIRST
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "source": self.label, "connected": False, "configured": True, "connected_at": None,
            "last_message_at": None, "messages": 0, "events": 0, "duplicates": 0,
            "poison": 0, "errors": 0, "reconnects": 0, "last_error": "", "last_error_at": None,
        }

    def stop(self) -> None:
        self._stop_event.set()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                url = ""
                try:
                    url = connections.url_of(self.source.connection)
                    connections.check_serves(self.source.connection, url, self.source.broker)
                    self._consume(self.source, url, self._handle, self._stop_event,
                                  self._connected)
                    if not self._stop_event.is_set():  # the broker ended the subscription
                        raise ConnectionError("the broker ended the subscription")
                except Exception as exc:  # any failure of a broker or of the database
                    self._failed(exc, url)
                    self._stop_event.wait(self._delay)
                    self._delay = min(self._delay * 2, self._max_backoff)
                    self._update(reconnects=self._state["reconnects"] + 1)
        finally:
            self._update(connected=False)
            if self._on_exit is not None:
                self._on_exit()

    def _connected(self) -> None:
        self._delay = BACKOFF_FIRST  # a later failure starts the backoff afresh
        self._update(connected=True, connected_at=time.time())
        log.info("listener.connected source=%s", self.label)

    def _handle(self, message: Incoming) -> None:
        self._update(last_message_at=time.time(), messages=self._state["messages"] + 1)
        try:
            drafts = to_events(message, self.mappings, max_bytes=self._max_bytes,
                               limits=self._limits)
            created = self._deliver(drafts)
        except PoisonMessage as exc:
            self._update(poison=self._state["poison"] + 1)
            self._error(f"poison message acknowledged: {exc.reason}")
            return
        new = sum(created)
        self._update(events=self._state["events"] + new,
                     duplicates=self._state["duplicates"] + len(created) - new)

    def _failed(self, exc: Exception, url: str) -> None:
        # A connection the environment does not define is a deployment's choice (a task file
        # loaded where its broker is not wanted): said, but not an outage.
        self._update(connected=False,
                     configured=not isinstance(exc, connections.ConnectionNotConfigured))
        text = str(exc) or type(exc).__name__
        self._error(connections.scrub(f"{type(exc).__name__}: {text}", url,
                                      f"connection {self.source.connection!r}"))

    def _error(self, text: str) -> None:
        text = text[:ERROR_CHARS]
        repeated = text == self._state["last_error"]
        self._update(errors=self._state["errors"] + 1, last_error=text,
                     last_error_at=time.time())
        if not repeated:  # a broker that stays away is logged once, not at every retry
            log.warning("listener.error source=%s error=%s", self.label, text)

    def _update(self, **changes: Any) -> None:
        with self._lock:
            self._state.update(changes)
