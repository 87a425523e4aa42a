"""The timer thread every cluster process runs beside django-q2's Sentinel.

It polls for due wake-ups every ``TICK_SECONDS`` (50 ms by default: timers fire within that
plus the broker's pickup latency) and dispatches them. It is started by our ``qcluster``
command in the main process *after* the Sentinel has forked, so no database connection it
opens is ever inherited by a worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from django.db import close_old_connections, connection

from taskapp.conf import conf
from taskapp.services.events import events_rewake
from taskapp.services.heartbeats import cluster_heartbeat, cluster_heartbeat_end
from taskapp.services.wakeups import wakeups_fire

log = logging.getLogger("async_states.timer")

# How often the thread records that its cluster is alive (GET /api/health/ reads it).
HEARTBEAT_SECONDS = 5.0
# How often it looks for events whose wake-up never committed (services.events_rewake).
REWAKE_SECONDS = 1.0


class TimerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="async-states-timer", daemon=True)
        self._stop_event = threading.Event()
        self.fired = 0
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._started_at = conf.clock.now()
        self._beaten = 0.0
        self._rewoken = 0.0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        log.info("timer.started tick=%ss", conf.TICK_SECONDS)
        try:
            while not self._stop_event.is_set():
                self._stop_event.wait(self._tick())
        finally:
            self._heartbeat_end()
            connection.close()
            log.info("timer.stopped fired=%s", self.fired)

    def _tick(self) -> float:
        """Fire what is due; how long to sleep before the next look."""
        tick = float(conf.TICK_SECONDS)
        try:
            self._heartbeat()
            self._rewake()
            fired = wakeups_fire()
        except Exception:  # the database may be away for a while: keep the thread alive
            log.exception("timer.error")
            close_old_connections()
            return max(tick, 1.0)
        self.fired += len(fired)
        return 0.0 if len(fired) >= 500 else tick

    def _heartbeat(self) -> None:
        if time.monotonic() - self._beaten >= HEARTBEAT_SECONDS:
            cluster_heartbeat(owner=self.owner, started_at=self._started_at)
            self._beaten = time.monotonic()

    def _rewake(self) -> None:
        if time.monotonic() - self._rewoken >= REWAKE_SECONDS:
            events_rewake()
            self._rewoken = time.monotonic()

    def _heartbeat_end(self) -> None:
        try:
            cluster_heartbeat_end(owner=self.owner)
        except Exception:  # stopping anyway: the row ages out of the health window
            log.warning("timer.heartbeat_end_failed", exc_info=True)
