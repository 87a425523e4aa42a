"""The timer thread every cluster process runs beside django-q2's Sentinel.

It polls for due wake-ups every ``TICK_SECONDS`` (50 ms by default: timers fire within that
plus the broker's pickup latency) and dispatches them. Every ``CLUSTER_BEAT_SECONDS`` it
commits its cluster's heartbeat (shared with the cluster's workers, which fence themselves
when it goes stale) and takes over the runs of clusters that stopped beating
(``taskapp.services.liveness``). It is started by our ``qcluster`` command in the main
process *after* the Sentinel has forked, so no database connection it opens is ever
inherited by a worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from django.db import close_old_connections, connection

from taskapp import liveness
from taskapp.conf import conf
from taskapp.services.events import events_rewake
from taskapp.services.heartbeats import cluster_heartbeat
from taskapp.services.liveness import (
    cluster_leave,
    cluster_workers_reap,
    clusters_recover_host,
    clusters_take_over,
)
from taskapp.services.wakeups import wakeups_fire

log = logging.getLogger("async_states.timer")

# The longest gap between two beats GET /api/health/ allows (the beat itself comes every
# CLUSTER_BEAT_SECONDS, well within it).
HEARTBEAT_SECONDS = 5.0
# How often it looks for events whose wake-up never committed (services.events_rewake).
REWAKE_SECONDS = 1.0


class TimerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="async-states-timer", daemon=True)
        self._stop_event = threading.Event()
        self.fired = 0
        self.owner = liveness.heartbeat_owner(socket.gethostname(), os.getpid())
        self._started_at = conf.clock.now()
        self._beaten = 0.0
        self._rewoken = 0.0
        self._last_beat_at = self._started_at
        self.healthy_since = self._started_at
        self.taken_over = 0

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

    def begin(self) -> None:
        """Beat once and take over the runs of this host's earlier clusters that are gone:
        called before the workers start, so none of them claims a run before its cluster
        has a heartbeat another cluster could judge. The database may be away: the thread
        beats once it is back (and leases, at the latest, free what a predecessor held)."""
        try:
            self._heartbeat()
            taken = clusters_recover_host(own=self.owner, alive=_pid_alive)
        except Exception:
            log.exception("timer.begin_failed")
            return
        if taken:
            log.warning("timer.recovered_predecessor runs=%s", len(taken))
        self.taken_over += len(taken)

    def _heartbeat(self) -> None:
        if time.monotonic() - self._beaten < float(conf.CLUSTER_BEAT_SECONDS):
            return
        now = conf.clock.now()
        cluster_heartbeat(owner=self.owner, started_at=self._started_at, now=now)
        self._beaten = time.monotonic()
        if (now - self._last_beat_at).total_seconds() > float(conf.CLUSTER_FENCE_SECONDS):
            self.healthy_since = now  # this cluster itself was silent: judge nobody yet
        self._last_beat_at = now
        liveness.beat_recorded(now.timestamp())
        self.taken_over += len(clusters_take_over(own=self.owner,
                                                  healthy_since=self.healthy_since))
        self.taken_over += len(cluster_workers_reap(cluster=liveness.cluster_id(),
                                                    alive=_pid_alive))

    def _rewake(self) -> None:
        if time.monotonic() - self._rewoken >= REWAKE_SECONDS:
            events_rewake()
            self._rewoken = time.monotonic()

    def _heartbeat_end(self) -> None:
        try:
            cluster_leave(owner=self.owner)
        except Exception:  # stopping anyway: other clusters take the runs over by silence
            log.warning("timer.heartbeat_end_failed", exc_info=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
