"""The bounded pool of run steps in each cluster worker process.

A django-q2 worker process used to drive one run at a time, held through each instruction's
I/O: with 2 workers and a 50 ms far end the engine could not pass 40 calls a second. Now the
django-q2 task (``taskapp.tasks``) hands its run ids to this pool and returns; ``STEP_THREADS``
threads advance them (``services.run_advance``), so while one run waits on a far end the
same process drives the others.

Back-pressure: a task blocks while every thread is busy, so a worker never takes more runs
than its pool holds; runs not yet taken wait in django-q2's queue, which the timer keeps
under ``TIMER_MAX_QUEUE`` as before.

Nothing durable lives here. A run id handed over but not yet claimed still has its
persisted backstop wake-up; a claimed run has its lease: a worker killed with steps in
flight loses none of them (the timer fires them again when their lease or backstop passes).
A worker django-q2 retires (``recycle``, ``max_rss``) or stops, or one sent SIGTERM, leaves
its task loop and exits, and interpreter exit joins these threads first: steps in flight
finish (within ``STEP_MAX_SECONDS`` plus an instruction's timeout; qcluster's
``SHUTDOWN_GRACE_SECONDS`` bounds a stop) instead of being cut short.

A step thread holds a database connection only for its database phases: the threads share
``STEP_DB_CONNECTIONS`` of them (``taskapp.dbpool``), and a thread waiting on a far end holds
none, so a worker's calls in flight are not bounded by its connections (docs/deploy.md,
"Database connections").
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from engine.forksafe import fork_safe_dict
from taskapp import services
from taskapp.conf import conf
from taskapp.dbpool import ConnectionPool

log = logging.getLogger("async_states.steps")


class StepPool:
    """``size`` threads advancing runs, sharing ``connections`` database connections (None:
    one each); ``submit`` blocks while all of them are busy."""

    def __init__(self, size: int, connections: int | None = None):
        self.size = size
        self.connections = ConnectionPool(min(connections or size, size))
        self._free = threading.BoundedSemaphore(size)
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="steps")

    def submit(self, run_id: str, timeout: float | None = None) -> bool:
        """Have a thread advance ``run_id``; False (nothing done) when no thread came free
        within ``timeout`` seconds (None: wait as long as it takes)."""
        if not self._free.acquire(timeout=timeout):
            return False
        try:
            self._executor.submit(self._advance, run_id)
        except BaseException:
            self._free.release()
            raise
        return True

    def _advance(self, run_id: str) -> None:
        # Django's per-request hygiene, per step: drop a connection that broke or aged out
        # (CONN_MAX_AGE, CONN_HEALTH_CHECKS) before using it again.
        try:
            with self.connections.held():
                close_old_connections()
                try:
                    services.run_advance(run_id=run_id)
                except Exception:  # noqa: BLE001 - run_advance logged it and gave the run back
                    connection.close_if_unusable_or_obsolete()
        finally:
            self._free.release()

    def in_flight(self) -> int:
        return self.size - self._free._value  # noqa: SLF001 - a gauge, read without the lock

    def drain(self, timeout: float) -> bool:
        """Wait until no step is in flight (at most ``timeout`` seconds); True when none is."""
        deadline = time.monotonic() + timeout
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.in_flight()


_pools: dict[str, StepPool] = fork_safe_dict()  # threads do not survive a fork
_lock = threading.Lock()


def pool() -> StepPool:
    """This process's pool, made on first use (in a forked worker: after the fork)."""
    found = _pools.get("pool")
    if found is None:
        with _lock:
            found = _pools.get("pool")
            if found is None:
                found = _pools["pool"] = StepPool(
                    conf.step_threads(connection.vendor),
                    conf.step_db_connections(connection.vendor))
                _drain_on_sigterm()
    return found


def _drain_on_sigterm() -> None:
    """In a cluster worker (a child process; called from its main thread): SIGTERM ends the
    worker's task loop instead of the process at once, so the exit drains the pool.

    django-q2's workers keep SIGTERM's default action, and a signal to the whole process
    group (what systemd sends) killed them mid-step: with a pool, every run in flight was
    cut and counted a crash towards ``MAX_STEP_CRASHES``. Raising ``SystemExit`` from the
    handler unwinds the worker's blocking read of its task queue (releasing the queue's
    lock on the way) and leaves its loop; interpreter exit then joins the step threads.
    qcluster SIGKILLs whatever is left after ``SHUTDOWN_GRACE_SECONDS``."""
    if multiprocessing.current_process().name == "MainProcess":
        return  # not a cluster worker (sync mode, tests): leave the signal alone

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the drain must not be cut
        log.info("worker.stopping pid=%s steps_in_flight=%s", os.getpid(),
                 _pools["pool"].in_flight())
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def steps_submit(run_ids: Sequence[str], *, give_up_after: float | None = None) -> int:
    """Hand ``run_ids`` to this process's pool in order; returns how many it took. After
    ``give_up_after`` seconds of waiting for free threads the rest are left to the caller."""
    began = time.monotonic()
    for taken, run_id in enumerate(run_ids):
        left = None if give_up_after is None else give_up_after - (time.monotonic() - began)
        if not pool().submit(run_id, timeout=None if left is None else max(left, 0.0)):
            return taken
    return len(run_ids)
