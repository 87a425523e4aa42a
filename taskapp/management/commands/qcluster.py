"""``manage.py qcluster``: django-q2's cluster plus the engine's timer and listener threads.

This replaces django-q2's own command (taskapp comes first in INSTALLED_APPS): the cluster
is django-q2's, unchanged; the main process, which otherwise only waits for the Sentinel,
also fires the engine's due wake-ups, keeps the cluster's heartbeat, runs the broker
listeners of subscriptions (``taskapp.listeners``) and publishes the runs' lifecycle events.

Stopping is bounded. django-q2's own SIGTERM handler stops the Sentinel through a
multiprocessing ``Event``; when the whole process group gets the signal (what systemd does),
the Sentinel dies at once (it keeps the default action) and may die asleep in that event's
condition, after which ``Event.set()`` waits forever for it to acknowledge — the main
process hung beside a defunct Sentinel. So the signal only sets a flag here; the stop runs
in a thread the main process watches, and after ``SHUTDOWN_GRACE_SECONDS`` every process
the cluster started is SIGKILLed. The timer thread then releases the runs they held.

The Sentinel is django-q2's with its two queues replaced by
``taskapp.cluster_queue.KillSafeQueue``s: tasks from its pusher to its workers, results from
its workers to its monitor. django-q2's own queues are left wedged for good by a reader
SIGKILLed while waiting on them (it dies holding the queue's lock); on these the
Sentinel's replacement and the other processes go on.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import django_q.cluster
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django_q.cluster import Cluster, Sentinel
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as DjangoQCommand
from django_q.worker import worker

from taskapp import liveness
from taskapp.cluster_queue import KillSafeQueue, Overflow
from taskapp.conf import conf
from taskapp.lifecycle import PublisherThread
from taskapp.listeners import ListenerManager
from taskapp.timer import TimerThread

log = logging.getLogger("async_states.qcluster")

_PR_SET_CHILD_SUBREAPER = 36
# Seconds the Sentinel's guard waits for a worker's timer lock before it goes on without it
# (PatientLock). The worker holds it for well under a millisecond per task.
TIMER_LOCK_PATIENCE = 1.0


class Command(DjangoQCommand):
    help = "Starts a django-q2 cluster with the Async States timer thread."

    def handle(self, *args, **options):
        if not settings.SECRET_KEY:  # django-q2 signs payloads with it: fail early
            raise CommandError("SECRET_KEY is empty; the cluster cannot sign its tasks")
        if problem := liveness.thresholds_problem():
            raise CommandError(problem)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        liveness.cluster_begin()  # before any fork: every worker inherits the id
        _become_subreaper()
        cluster = Cluster()
        stopping = _catch_stop_signals()
        timer = TimerThread()
        timer.begin()  # beat, recover this host's dead predecessors: before the workers
        connections.close_all()  # no connection of this process may be inherited by a fork
        try:
            with _sentinel_class(KillSafeSentinel):
                cluster.start()
        except RuntimeError:  # the Sentinel died starting: stopped by a signal to the group?
            if not stopping.is_set():
                raise
        timer.start()  # after the Sentinel's fork: see taskapp.timer
        publisher = PublisherThread()  # lifecycle events (taskapp.lifecycle), after it too
        publisher.start()
        listeners = ListenerManager(timer.owner)
        listeners.start()  # after the fork too: no worker inherits a broker socket
        self.stdout.write(f"Async States cluster ready (pid {os.getpid()}): workers and timer "
                          "running", ending="\n")
        self.stdout.flush()
        try:
            if options.get("run_once", False):
                stopping.set()
            while cluster.sentinel.is_alive() and not stopping.wait(0.2):
                pass
            _stop(cluster)
        finally:
            publisher.stop()
            listeners.stop()
            listeners.join(timeout=10)
            timer.stop()
            timer.join(timeout=5)
            publisher.join(timeout=float(conf.LIFECYCLE_TIMEOUT_SECONDS) + 1)


class KillSafeSentinel(Sentinel):
    """django-q2's Sentinel whose workers take their tasks from a ``KillSafeQueue``
    (bounded by django-q2's ``queue_limit`` as its own queue was) and hand their results
    to the monitor through another, which never blocks a worker. Everything else — the
    pusher, the worker loop, the monitor, the guard that replaces dead processes — is
    django-q2's."""

    def __init__(self, stop_event, start_event, cluster_id, broker=None, timeout=None,
                 start=True):
        super().__init__(stop_event, start_event, cluster_id, broker, timeout, start=False)
        try:
            tasks = WorkerTaskQueue(maxsize=Conf.QUEUE_LIMIT or 0)
            results = KillSafeQueue(overflow=Overflow.DROP)
        except (OSError, AttributeError):  # no SOCK_SEQPACKET Unix sockets: not Linux
            log.warning("qcluster.queues_not_kill_safe: django-q2's queues are kept; a "
                        "worker killed while waiting for a task stops this cluster")
        else:
            self.task_queue.close()  # django-q2's, never used: nothing was put on them
            self.result_queue.close()
            self.task_queue, self.result_queue = tasks, results
        if start:
            self.start()

    def spawn_worker(self) -> None:
        """django-q2's, with a ``PatientLock`` on the worker's timer."""
        timer = multiprocessing.Value("f", -1, lock=PatientLock())
        self.spawn_process(worker, self.task_queue, self.result_queue, timer, self.timeout)


class WorkerTaskQueue(KillSafeQueue):
    """The workers' task queue. A worker's main thread lets SIGTERM in only while it waits
    here and blocks it otherwise, so every thread it starts (its step threads) blocks it
    for good and the kernel hands the signal to the main thread: its wait is interrupted
    and the worker drains (``taskapp.steps``). Handed to a step thread, the signal
    interrupted nothing, and the worker waited for a task until SIGKILLed at the shutdown
    grace (seen in tests/e2e/test_recovery.py). Arriving while a task runs, it waits,
    pending, for the next ``get``."""

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            return super().get(block, timeout)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


class PatientLock:
    """The lock of a worker's timer (a shared ``Value``), taken by the worker while it hands
    in a result and by the Sentinel's guard before it looks whether the worker is alive. A
    worker killed inside that section would hold it for ever, and the guard would hang on
    it: no process of the cluster would be replaced again, nor the cluster stop on its own.
    Here a ``with`` waits at most ``TIMER_LOCK_PATIENCE`` and then goes on without the lock,
    and the guard finds the worker dead and replaces it. Reentrant, as django-q2's is (the
    ``Value``'s own accessors take it again inside)."""

    def __init__(self) -> None:
        self._lock = multiprocessing.get_context("fork").RLock()
        self.acquire, self.release = self._lock.acquire, self._lock.release
        self._taken: list[bool] = []  # one entry per ``with`` open in this process

    def __enter__(self) -> bool:
        taken = self._lock.acquire(timeout=TIMER_LOCK_PATIENCE)
        self._taken.append(taken)
        return taken

    def __exit__(self, *exc: object) -> None:
        if self._taken.pop():
            self._lock.release()


@contextmanager
def _sentinel_class(cls: type[Sentinel]) -> Iterator[None]:
    """Have ``Cluster.start`` fork ``cls`` as its Sentinel: django-q2 names the class in
    its module and offers no other way in. Only for the start, which forks at once."""
    original = django_q.cluster.Sentinel
    django_q.cluster.Sentinel = cls
    try:
        yield
    finally:
        django_q.cluster.Sentinel = original


def _catch_stop_signals() -> threading.Event:
    """SIGTERM and SIGINT set the returned event and do nothing else (see the module's
    docstring); installed over django-q2's handlers."""
    stopping = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopping


def _stop(cluster: Cluster) -> None:
    """Stop the Sentinel (its workers finish the steps in hand) within
    ``SHUTDOWN_GRACE_SECONDS``; past it, SIGKILL every process this one started."""
    if cluster.sentinel.is_alive():
        threading.Thread(target=cluster.stop, name="qcluster-stop", daemon=True).start()
    deadline = time.monotonic() + float(conf.SHUTDOWN_GRACE_SECONDS)
    # Workers finish the steps their pools hold before they exit (taskapp.steps), also
    # when the Sentinel died first (a signal to the whole group): wait for them too.
    while (cluster.sentinel.is_alive() or _descendants(os.getpid())) and (
            time.monotonic() < deadline):
        time.sleep(0.1)
    # Anything left has outlived the grace.
    for pid in _descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cluster.sentinel.join(timeout=5)


def _become_subreaper() -> None:
    """Orphaned descendants (workers whose Sentinel died) become this process's children,
    so ``_descendants`` still finds them. Linux only; elsewhere they go to init."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of ``root``, from /proc; empty where there is none."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        kids = [pid for pid, parent in parents.items() if parent == frontier[-1]]
        frontier.pop()
        found += kids
        frontier += kids
    return found
