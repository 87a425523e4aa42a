"""Which cluster this process belongs to, and whether that cluster is still provably alive.

A cluster's main process picks an id (``cluster_begin``) before django-q2 forks the
Sentinel and its workers, so every worker inherits it (through the environment) and writes
it at the head of each lease it takes: a surviving cluster can then tell which runs a dead
cluster held (``taskapp.services.liveness``).

The main process's timer thread records each heartbeat it commits in a few bytes of memory
shared with the forked workers (an anonymous ``MAP_SHARED`` mapping made before the fork).
A worker reads it before each instruction call: when its own cluster's last committed beat
is older than ``CLUSTER_FENCE_SECONDS``, other clusters may be about to declare it dead and
take its runs over, so the worker stops (*fences itself*) instead of calling out. See
docs/engine.md, "Recovery after a crash", for why that makes a takeover safe.

Processes outside a cluster (the web server, tests calling services) have no id: their
leases are not attributable and only expire.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
import uuid

from taskapp.conf import conf

ENV = "ASYNC_STATES_CLUSTER_ID"
_BEAT = struct.Struct("d")

_shared: mmap.mmap | None = None


def cluster_begin() -> str:
    """Give this process (a ``qcluster`` main process, before it forks) a new cluster id and
    the shared beat record its workers will read; returns the id."""
    global _shared
    cluster = uuid.uuid4().hex[:10]
    os.environ[ENV] = cluster
    _shared = mmap.mmap(-1, _BEAT.size)
    beat_recorded(time.time())  # the cluster has not beaten yet: it begins unfenced
    return cluster


def thresholds_problem() -> str | None:
    """Why the liveness settings cannot be safe together, or None: a cluster must beat more
    often than its workers fence, and fence before the others may declare it dead."""
    beat = float(conf.CLUSTER_BEAT_SECONDS)
    fence = float(conf.CLUSTER_FENCE_SECONDS)
    dead = float(conf.CLUSTER_DEAD_SECONDS)
    if 0 < beat < fence < dead:
        return None
    return (f"ASYNC_STATES needs 0 < CLUSTER_BEAT_SECONDS < CLUSTER_FENCE_SECONDS < "
            f"CLUSTER_DEAD_SECONDS (defaults 0.5 < 1.5 < 2.5); got {beat} / {fence} / {dead}")


def cluster_id() -> str:
    """This process's cluster id; empty outside a cluster."""
    return os.environ.get(ENV, "")


def beat_recorded(at: float) -> None:
    """The timer committed a heartbeat stamped ``at`` (epoch seconds)."""
    if _shared is not None:
        _shared[:] = _BEAT.pack(at)


def last_beat() -> float | None:
    """The stamp of the last committed heartbeat (epoch seconds); None outside a cluster."""
    if _shared is None:
        return None
    return _BEAT.unpack(_shared[:])[0]


def fenced(now: float | None = None) -> bool:
    """True when this process's cluster has not committed a heartbeat for
    ``CLUSTER_FENCE_SECONDS``: it must not start anything outside (instruction calls)."""
    beat = last_beat()
    if beat is None:
        return False
    return (now if now is not None else time.time()) - beat > float(conf.CLUSTER_FENCE_SECONDS)


def lease_prefix() -> str:
    """What a lease owner starts with in this process: ``<cluster>/``, or nothing."""
    cluster = cluster_id()
    return f"{cluster}/" if cluster else ""


def heartbeat_owner(host: str, pid: int) -> str:
    """The heartbeat row's owner for this cluster's main process: ``host:pid/cluster``."""
    cluster = cluster_id()
    return f"{host}:{pid}/{cluster}" if cluster else f"{host}:{pid}"


def parse_owner(owner: str) -> tuple[str, int | None, str]:
    """(host, pid, cluster) of a heartbeat owner; pid None and cluster empty when the row
    was written by an older version (``host:pid``) or is malformed."""
    where, _, cluster = owner.partition("/")
    host, _, pid = where.rpartition(":")
    return host, int(pid) if pid.isascii() and pid.isdigit() else None, cluster
