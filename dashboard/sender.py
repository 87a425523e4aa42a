"""Sends ``layer``-mode messages from a worker process without making the worker wait.

``async_to_sync(layer.group_send)`` from a synchronous caller builds an event loop and a Redis
connection per call: 6.7 ms per send over 200 sends here (14 ms for the first), paid after
every commit of every step. Instead each process keeps one daemon thread with one event loop
(so channels-redis keeps its connection): ``send`` only queues the message (microseconds) and
the thread delivers the messages in order.

When the process exits, what is still queued gets up to ``FLUSH_SECONDS`` to go out: a
``multiprocessing`` finalizer, which runs both at a normal interpreter exit and when a
django-q2 worker ends after ``recycle`` (500) tasks — a measured miss of up to 3 messages in
900 before this was added. Otherwise best effort, as the dashboard is: messages queued past
``MAX_PENDING`` (Redis down) are dropped with a warning; the page catches up from the
database when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from multiprocessing.util import Finalize
from typing import Any

from channels.layers import get_channel_layer

from engine.forksafe import forget_after_fork

log = logging.getLogger("async_states.dashboard")

MAX_PENDING = 10_000
FLUSH_SECONDS = 2.0


class LayerSender:
    def __init__(self) -> None:
        self._forget()
        self._dropped = 0
        forget_after_fork(self._forget)

    def _forget(self) -> None:
        """No loop, no queue: a forked child starts its own (threads do not survive ``fork``,
        and django-q2 forks its workers). The lock is new too: another thread of the parent
        may have held it at the fork."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict]] | None = None

    def send(self, group: str, message: dict[str, Any]) -> None:
        loop, queue = self._started()
        loop.call_soon_threadsafe(self._put, queue, (group, message))

    def _put(self, queue: asyncio.Queue, item: tuple[str, dict]) -> None:
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning("dashboard.push_dropped count=%d (channel layer too slow or down)",
                            self._dropped)

    def _started(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        """This process's loop and queue, started on first use."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._queue = asyncio.Queue(MAX_PENDING)
                threading.Thread(target=self._run, args=(self._loop, self._queue),
                                 name="dashboard-push", daemon=True).start()
                Finalize(self, self.flush, exitpriority=10)
            assert self._loop and self._queue
            return self._loop, self._queue

    def flush(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait (up to ``timeout``) until every queued message was handed to the layer."""
        with self._lock:
            loop, queue = self._loop, self._queue
            if loop is None or queue is None:
                return
        done = asyncio.run_coroutine_threadsafe(asyncio.wait_for(queue.join(), timeout), loop)
        try:
            done.result(timeout + 1)
        except Exception:  # timed out or the loop is gone: the rest is lost, as documented
            log.warning("dashboard.push_flush_incomplete pending=%d", queue.qsize())

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_deliver(queue))


async def _deliver(queue: asyncio.Queue) -> None:
    while True:
        group, message = await queue.get()
        try:
            await get_channel_layer().group_send(group, message)
        except Exception:  # Redis down: log, keep the thread for the next message
            log.exception("dashboard.push_failed group=%s", group)
        finally:
            queue.task_done()


sender = LayerSender()
