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
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand

from taskapp import liveness
from taskapp.conf import conf
from taskapp.lifecycle import PublisherThread
from taskapp.listeners import ListenerManager
from taskapp.timer import TimerThread

_PR_SET_CHILD_SUBREAPER = 36


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
