"""The watchdog thread of each worker process: reports a step stuck past its budget.

A step yields its worker after ``STEP_MAX_SECONDS`` when it gets the chance; one that does
not (a far end that never answers within a long timeout, a computation that never returns)
keeps a worker busy where nobody sees it. This thread looks at the step the process runs
every few seconds, in memory, and records an incident (``taskapp.services.workers``) while
the step has run ``STUCK_STEP_SECONDS`` or more (refreshing it on each look); it removes it
when the step ends. It never stops
the step: cancel and the lease do that (a run's stuck step is refused when it commits).

It is started on the first step a process runs, so it lives in django-q2's worker
processes (after their fork) and never in the web server.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connection

from engine.forksafe import fork_safe_dict
from taskapp.conf import conf
from taskapp.services import workers

log = logging.getLogger("async_states.watchdog")

# How often the thread looks; an incident is seen within this of STUCK_STEP_SECONDS.
LOOK_SECONDS = 5.0

# Whether this process started its watchdog (a forked worker starts its own).
_started: dict[str, bool] = fork_safe_dict()
_start_lock = threading.Lock()


def ensure_started() -> None:
    if _started or float(conf.STUCK_STEP_SECONDS) <= 0:
        return
    with _start_lock:
        if not _started:
            Watchdog().start()
            _started["watchdog"] = True


class Watchdog(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="async-states-watchdog", daemon=True)
        self.owner = workers.worker_owner()
        self.reported: workers.CurrentStep | None = None

    def run(self) -> None:
        stop = threading.Event()
        while not stop.wait(LOOK_SECONDS):
            try:
                self.look()
            except Exception:  # the database may be away: look again later
                log.warning("watchdog.error", exc_info=True)
            finally:
                connection.close()  # rare writes: hold no idle connection

    def look(self, now_monotonic: float | None = None) -> None:
        """Report the current step if it is stuck; withdraw a report whose step ended."""
        step = workers.current_step()
        now = time.monotonic() if now_monotonic is None else now_monotonic
        stuck = step is not None and now - step.began >= float(conf.STUCK_STEP_SECONDS)
        if stuck:
            if self.reported != step:
                log.error("run.step_stuck run=%s owner=%s seconds=%.0f", step.run_id,
                          self.owner, now - step.began)
            # Refreshed on every look, so a worker killed while stuck ages out of health.
            workers.worker_stuck(owner=self.owner, step=step)
            self.reported = step
        elif not stuck and self.reported is not None:
            workers.worker_unstuck(owner=self.owner)
            self.reported = None
