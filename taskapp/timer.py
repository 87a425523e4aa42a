"""The timer thread every cluster process runs beside django-q2's Sentinel.

It polls for due wake-ups every ``TICK_SECONDS`` (50 ms by default: timers fire within that
plus the broker's pickup latency) and dispatches them. It is started by our ``qcluster``
command in the main process *after* the Sentinel has forked, so no database connection it
opens is ever inherited by a worker.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from taskapp.conf import conf
from taskapp.services.wakeups import wakeups_fire

log = logging.getLogger("async_states.timer")


class TimerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="async-states-timer", daemon=True)
        self._stop_event = threading.Event()
        self.fired = 0

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        log.info("timer.started tick=%ss", conf.TICK_SECONDS)
        try:
            while not self._stop_event.is_set():
                self._stop_event.wait(self._tick())
        finally:
            connection.close()
            log.info("timer.stopped fired=%s", self.fired)

    def _tick(self) -> float:
        """Fire what is due; how long to sleep before the next look."""
        tick = float(conf.TICK_SECONDS)
        try:
            fired = wakeups_fire()
        except Exception:  # the database may be away for a while: keep the thread alive
            log.exception("timer.error")
            close_old_connections()
            return max(tick, 1.0)
        self.fired += len(fired)
        return 0.0 if len(fired) >= 500 else tick
