"""Run a check in a real forked child process."""

from __future__ import annotations

import os
from collections.abc import Callable


def in_child(check: Callable[[], bool]) -> int:
    """Run ``check`` in a forked child; its exit status (0: the check held, 1: it did not,
    2: it raised)."""
    pid = os.fork()
    if pid == 0:  # the child: it must never return into pytest
        try:
            os._exit(0 if check() else 1)
        except BaseException:
            os._exit(2)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
