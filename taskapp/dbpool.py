"""The database connections a worker's step threads share (``STEP_DB_CONNECTIONS``).

Django gives every thread a connection of its own. With one per step thread, a worker's
calls in flight were bounded by its connections: each thread held one for the whole step,
idle while it waited on a far end, and 2 workers of 41 threads each (what 400 steps/s at a
200 ms far end needs) passed PostgreSQL's default ``max_connections`` of 100.

Here a step thread holds a connection only for its database phases: ``held`` installs one
from the process's pool as the thread's ``connections["default"]`` for the step, and
``lent`` gives it back while the runner waits on the outside world (``RunStore.outside``,
entered only with the step's records committed) and takes one again after. The pool never
opens more than ``size`` connections; a thread that finds them all in use waits (a database
phase takes a few milliseconds).

Nothing is lent inside a transaction (``in_atomic_block``): the connection carries it. A
thread that touched the database while its connection was lent got a fresh one of its own
from Django; taking a pooled one back closes that one, so none leaks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from engine.forksafe import fork_safe_local

_holder = fork_safe_local()  # .pool: the pool whose connection this thread holds


@contextmanager
def lent() -> Iterator[None]:
    """``ConnectionPool.lent`` of the pool this thread holds a connection of, if any (a
    thread outside a step pool keeps its own connection)."""
    pool = getattr(_holder, "pool", None)
    if pool is None:
        yield
        return
    with pool.lent():
        yield


class ConnectionPool:
    """At most ``size`` Django connections to ``alias``, handed between threads."""

    def __init__(self, size: int, alias: str = DEFAULT_DB_ALIAS):
        self.size, self.alias = size, alias
        self._free = threading.BoundedSemaphore(size)
        self._idle: list[BaseDatabaseWrapper] = []
        self._lock = threading.Lock()
        self._held = fork_safe_local()  # .wrapper: the pooled connection this thread holds

    @contextmanager
    def held(self) -> Iterator[None]:
        """This thread uses a pooled connection until the block ends (nested: the same)."""
        if self._holding() is not None:
            yield
            return
        self._take()
        _holder.pool = self
        try:
            yield
        finally:
            _holder.pool = None
            if self._holding() is not None:  # a failed take back in ``lent`` left none
                self._give()

    @contextmanager
    def lent(self) -> Iterator[None]:
        """Give this thread's pooled connection back until the block ends, then take one
        again; nothing happens outside ``held`` or inside a transaction."""
        wrapper = self._holding()
        if wrapper is None or wrapper.in_atomic_block:
            yield
            return
        self._give()
        try:
            yield
        finally:
            self._take()

    def close(self) -> None:
        """Close the idle connections (those in use close when their step gives them back
        to a pool that keeps them: call this once the threads are done)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for wrapper in idle:
            wrapper.close()

    def in_use(self) -> int:
        return self.size - self._free._value  # noqa: SLF001 - a gauge, read without the lock

    def opened(self) -> int:
        """Connections this pool made (in use or idle; an idle one may be closed)."""
        with self._lock:
            return self.in_use() + len(self._idle)

    def _holding(self) -> BaseDatabaseWrapper | None:
        return getattr(self._held, "wrapper", None)

    def _take(self) -> None:
        self._free.acquire()
        installed = False
        try:
            self._close_own()
            with self._lock:
                wrapper = self._idle.pop() if self._idle else None
            if wrapper is None:
                wrapper = connections.create_connection(self.alias)
                wrapper.inc_thread_sharing()  # it moves between this pool's threads
            connections[self.alias] = wrapper
            self._held.wrapper, installed = wrapper, True
        finally:
            if not installed:
                self._free.release()

    def _give(self) -> None:
        wrapper, self._held.wrapper = self._held.wrapper, None
        del connections[self.alias]  # the thread's next query would open a connection
        with self._lock:
            self._idle.append(wrapper)
        self._free.release()

    def _close_own(self) -> None:
        """Close a connection Django opened for this thread itself (used while lent)."""
        for own in connections.all(initialized_only=True):
            if own.alias == self.alias:
                own.close()
