"""State that a forked process must start without: the one mechanism for it.

django-q2 forks its workers from a process that may already hold sockets (an HTTP session's
pool, a database connection, a broker client, an event-loop thread). A child that reused them
would interleave its bytes with the parent's on one connection. Everything a process caches
for itself registers here and is dropped in the child right after ``fork``
(``os.register_at_fork``), instead of each cache comparing process ids on every use.
Dropped, not closed: closing would close the parent's sockets too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

_forgets: list[Callable[[], None]] = []


def forget_after_fork(forget: Callable[[], None]) -> Callable[[], None]:
    """Call ``forget`` in every child process right after it is forked (usable as a
    decorator); returns it."""
    _forgets.append(forget)
    return forget


def _after_fork_in_child() -> None:
    for forget in _forgets:
        forget()


if hasattr(os, "register_at_fork"):  # every POSIX Python; Windows never forks
    os.register_at_fork(after_in_child=_after_fork_in_child)


def fork_safe_local() -> threading.local:
    """A ``threading.local`` whose values a forked child does not inherit. (In the child only
    the thread that forked exists: clearing that thread's values clears them all.)"""
    local = threading.local()
    forget_after_fork(lambda: local.__dict__.clear())
    return local


def fork_safe_dict() -> dict[Any, Any]:
    """A plain dict, emptied in a forked child: a per-process cache shared by threads."""
    cache: dict[Any, Any] = {}
    forget_after_fork(cache.clear)
    return cache
