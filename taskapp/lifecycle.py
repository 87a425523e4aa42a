"""The lifecycle publisher: a thread of every cluster's main process that empties the outbox.

It claims a bounded batch of events (``LIFECYCLE_BATCH``), publishes each destination's in
order, deletes what was delivered and gives back what was not. Nothing else waits for it: the
runs' steps commit their events and go on, so a slow or down receiver only makes the outbox
longer (``GET /api/health/`` and ``/metrics`` say how long, and why). A destination that fails
is left alone for a delay that doubles from 1 s to ``LIFECYCLE_MAX_BACKOFF_SECONDS``; its
events wait for it, in order, while the other destinations go on.

It is started by our ``qcluster`` command beside the timer thread, after the Sentinel has
forked (see ``taskapp.timer``), and it stops with it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta

from django.db import close_old_connections, connection

from engine import lifecycle
from engine.errors import InstructionError
from taskapp.conf import conf
from taskapp.services.lifecycle import (
    Claimed,
    lifecycle_claim,
    lifecycle_delivered,
    lifecycle_retry_later,
)

log = logging.getLogger("async_states.lifecycle")


class Backoff:
    """Per-destination delays after failures: 1 s, 2 s, 4 s … up to ``cap``."""

    def __init__(self) -> None:
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def waiting(self) -> list[str]:
        """Destinations still backing off."""
        now = time.monotonic()
        return [key for key, until in self._until.items() if until > now]

    def failed(self, key: str, cap: float) -> float:
        """Seconds to leave ``key`` alone after one more failure."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(2.0 ** min(failures - 1, 30), cap)
        self._until[key] = time.monotonic() + delay
        return delay

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
        self._until.pop(key, None)


def publish_round(backoff: Backoff) -> int:
    """Claim one batch and publish it; how many events were claimed."""
    lease = float(conf.LIFECYCLE_LEASE_SECONDS)
    claimed = lifecycle_claim(limit=int(conf.LIFECYCLE_BATCH), lease=timedelta(seconds=lease),
                              skip=backoff.waiting())
    # Past half the lease, what is left is given back rather than published late: another
    # cluster may take it once the lease is over, and would publish it a second time.
    deadline = time.monotonic() + lease / 2
    for key, items in _by_destination(claimed):
        if time.monotonic() > deadline:
            lifecycle_retry_later(ids=[i.id for i in items], at=conf.clock.now(), error="")
            continue
        _publish(key, items, backoff, deadline)
    return len(claimed)


def _by_destination(claimed: Sequence[Claimed]) -> Iterator[tuple[str, list[Claimed]]]:
    ordered = sorted(claimed, key=lambda c: (c.destination, c.id))
    for key, items in itertools.groupby(ordered, key=lambda c: c.destination):
        yield key, list(items)


def _publish(key: str, items: list[Claimed], backoff: Backoff, deadline: float) -> None:
    """Publish ``items`` in order; at the first failure, give it and the rest back (and
    past ``deadline``, the rest)."""
    destination = lifecycle.destination_from_key(key)
    timeout = float(conf.LIFECYCLE_TIMEOUT_SECONDS)
    for index, item in enumerate(items):
        if time.monotonic() > deadline:
            lifecycle_delivered(ids=[i.id for i in items[:index]])
            lifecycle_retry_later(ids=[i.id for i in items[index:]], at=conf.clock.now(),
                                  error="")
            return
        try:
            lifecycle.publish(destination, item.event, timeout)
        except Exception as exc:  # any failure of any driver: the event waits, the thread lives
            lifecycle_delivered(ids=[i.id for i in items[:index]])
            delay = backoff.failed(key, float(conf.LIFECYCLE_MAX_BACKOFF_SECONDS))
            lifecycle_retry_later(ids=[i.id for i in items[index:]],
                                  at=conf.clock.now() + timedelta(seconds=delay),
                                  error=_reason(exc))
            log.warning("lifecycle.publish_failed destination=%s retry_in=%.0fs error=%s",
                        lifecycle.describe(destination), delay, _reason(exc))
            return
    lifecycle_delivered(ids=[i.id for i in items])
    backoff.succeeded(key)


def _reason(exc: Exception) -> str:
    # Our publishers' errors name the connection and scrub its URL; anything else is
    # shown by its type only, since its text might quote a URL.
    return str(exc) if isinstance(exc, InstructionError) else type(exc).__name__


class PublisherThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="async-states-lifecycle", daemon=True)
        self._stop_event = threading.Event()
        self.backoff = Backoff()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        log.info("lifecycle.started")
        try:
            while not self._stop_event.is_set():
                self._stop_event.wait(self._round())
        finally:
            connection.close()

    def _round(self) -> float:
        """Publish one batch; how long to wait before the next look."""
        try:
            claimed = publish_round(self.backoff)
        except Exception:  # the database may be away for a while: keep the thread alive
            log.exception("lifecycle.error")
            close_old_connections()
            return 1.0
        return 0.0 if claimed else float(conf.LIFECYCLE_POLL_SECONDS)
