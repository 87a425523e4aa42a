"""The listener thread every cluster runs beside its timer: one broker listener per distinct
``subscribe.source`` that the loaded definitions declare.

Every ``LISTENER_POLL_SECONDS`` it reads the definitions' ids (one query; what a definition
declares is read once, when it first appears) and starts a listener
(``engine.sources.listener``) for each source not yet listened to, stops the ones no
definition declares any more, and hands the others their subscriptions' current mappings.
Then it writes every listener's state to the cluster's heartbeat row, where
``/api/health/`` and ``/metrics`` read it.

Listeners live in the cluster's main process, on threads of their own (never one per run):
each stores a message's events through the events service (``events_from_broker``), which
commits them before the listener acknowledges the message. Each listener thread has its own
database connection, closed when it stops. Started by ``qcluster`` after the Sentinel forked,
like the timer, so no worker inherits a broker socket.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, close_old_connections, connection

from engine.budgets import TemplateLimits
from engine.language.model import SourceSpec
from engine.sources import EventDraft, EventMapping, consumer_of
from engine.sources.listener import Listener
from taskapp import selectors
from taskapp.conf import conf
from taskapp.services import cluster_listeners_report, events_from_broker

log = logging.getLogger("async_states.listeners")


class ListenerManager(threading.Thread):
    def __init__(self, owner: str) -> None:
        super().__init__(name="async-states-listeners", daemon=True)
        self.owner = owner
        self.listeners: dict[tuple, Listener] = {}
        # What each definition declares, read once per definition (they are immutable).
        self._declared: dict[int, dict] = {}
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            while True:
                self._sync()
                self._report()
                if self._stop_event.wait(float(conf.LISTENER_POLL_SECONDS)):
                    break
        finally:
            self._stop_all()
            connection.close()

    def _sync(self) -> None:
        try:
            wanted = self._wanted()
        except Exception:  # the database may be away for a while: keep what runs
            log.exception("listeners.sync_failed")
            close_old_connections()
            return
        for key in self.listeners.keys() - wanted.keys():
            listener = self.listeners.pop(key)
            listener.stop()
            log.info("listeners.stopped source=%s", listener.label)
        for key, (source, mappings) in wanted.items():
            if key in self.listeners:
                self.listeners[key].mappings = mappings
                continue
            listener = Listener(
                source, mappings, consume=consumer_of(source.broker), deliver=_deliver,
                max_bytes=int(conf.MAX_EVENT_BYTES), limits=_limits(),
                max_backoff=float(conf.LISTENER_MAX_BACKOFF_SECONDS), on_exit=_close_connection)
            self.listeners[key] = listener
            listener.start()
            log.info("listeners.started source=%s", listener.label)

    def _wanted(self) -> dict[tuple, tuple[SourceSpec, frozenset[EventMapping]]]:
        """Every source of the loaded definitions, with the union of their mappings."""
        ids = selectors.definition_ids()
        self._declared = {i: self._declared[i] if i in self._declared
                          else selectors.broker_sources_of(i) for i in ids}
        wanted: dict[tuple, tuple[SourceSpec, frozenset[EventMapping]]] = {}
        for declared in self._declared.values():
            for key, (source, mappings) in declared.items():
                known = wanted.get(key, (source, frozenset()))[1]
                wanted[key] = (source, known | mappings)
        return wanted

    def _report(self) -> None:
        states = [listener.state() for listener in self.listeners.values()]
        try:
            cluster_listeners_report(owner=self.owner, listeners=states)
        except Exception:
            log.warning("listeners.report_failed", exc_info=True)
            close_old_connections()

    def _stop_all(self) -> None:
        for listener in self.listeners.values():
            listener.stop()
        for listener in self.listeners.values():
            listener.join(timeout=5)
        self.listeners = {}
        try:
            cluster_listeners_report(owner=self.owner, listeners=[])
        except Exception:  # stopping anyway
            pass


def _deliver(drafts: list[EventDraft]) -> list[bool]:
    try:
        return events_from_broker(drafts=drafts)
    except DatabaseError:
        connection.close()  # a broken connection: the next message opens a new one
        raise


def _close_connection() -> None:
    """Close the calling thread's database connection (a listener's, as it stops)."""
    connection.close()


def _limits() -> TemplateLimits:
    return TemplateLimits(max_seconds=float(conf.TEMPLATE_MAX_SECONDS),
                          max_operations=int(conf.TEMPLATE_MAX_OPERATIONS),
                          max_output=int(conf.TEMPLATE_MAX_OUTPUT))
