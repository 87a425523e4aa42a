"""One hub per daphne process: the background work shared by its websocket consumers.

Started by the first consumer (``join``) and stopped with the last (``leave``), it wakes every
``INTERVAL`` seconds to

- in ``poll`` mode, read the runs changed since its last look (``dashboard.poller``) and hand
  each ``run`` message to every consumer (in ``layer`` mode the consumers get them from the
  channel layer's ``runs`` group instead, and tell the hub with ``touched``);
- when something changed, recount runs by status and by (task, status, state) — two GROUP BY
  queries, at most once per ``COUNTS_EVERY`` seconds however busy the engine — and send the
  ``counts`` message to the consumers that show counts.

A consumer is anything with ``async def push(message)`` and a ``wants_counts`` attribute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.utils import timezone

from dashboard import messages, push, selectors
from dashboard.poller import RunPoller

log = logging.getLogger("async_states.dashboard")

INTERVAL = 0.5
COUNTS_EVERY = 1.0


class Listener(Protocol):
    wants_counts: bool

    async def push(self, message: dict[str, Any]) -> None: ...


class Hub:
    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.task: asyncio.Task | None = None
        self.dirty = False
        self.looks = 0  # how many times the poller looked since the hub started

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def join(self, listener: Listener) -> None:
        self.listeners.add(listener)
        loop = asyncio.get_running_loop()
        if not self.running or self.task.get_loop() is not loop:  # type: ignore[union-attr]
            self.looks = 0
            self.task = loop.create_task(self._loop(), name="dashboard")

    def leave(self, listener: Listener) -> None:
        self.listeners.discard(listener)
        if not self.listeners and self.task is not None:
            self.task.cancel()
            self.task = None

    def touched(self) -> None:
        self.dirty = True

    async def _loop(self) -> None:
        poller = RunPoller(timezone.now()) if push.mode() == push.POLL else None
        counted = 0.0
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                if poller is not None:
                    await self._poll(poller)
                if self.dirty and time.monotonic() - counted >= COUNTS_EVERY:
                    self.dirty, counted = False, time.monotonic()
                    await self._counts()
            except Exception:  # a database hiccup must not end the live page
                log.exception("dashboard.hub_failed")

    async def _poll(self, poller: RunPoller) -> None:
        changes = await database_sync_to_async(_read)(poller)
        self.looks += 1
        for message in changes:
            await self._fan_out(message, lambda listener: True)
        if changes:
            self.dirty = True

    async def _counts(self) -> None:
        if any(listener.wants_counts for listener in self.listeners):
            message = await database_sync_to_async(count)()
            await self._fan_out(message, lambda listener: listener.wants_counts)

    async def _fan_out(self, message: dict[str, Any], to) -> None:
        for listener in list(self.listeners):
            if to(listener):
                try:
                    await listener.push(message)
                except Exception:  # one broken connection must not starve the others
                    log.exception("dashboard.push_to_client_failed")


def _read(poller: RunPoller) -> list[dict[str, Any]]:
    changes = poller.read()
    poller.forget_old()
    return changes


def count() -> dict[str, Any]:
    """The ``counts`` message, read now."""
    return messages.counts(selectors.status_counts(), selectors.state_counts())


hub = Hub()
