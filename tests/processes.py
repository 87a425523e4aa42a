"""What a process of ours is doing, read from /proc (Linux): for tests that kill a process
at a chosen moment."""

from __future__ import annotations

import platform
from pathlib import Path

# The syscalls of a process blocked reading a queue (read(2) on django-q2's pipe,
# recvfrom(2) or select(2)/pselect6(2) on a socket), per machine.
_READ_SYSCALLS = {"x86_64": {"0", "45", "23", "270"}, "aarch64": {"63", "207", "72"}}


def blocked_reading(pid: int) -> bool:
    """Whether the process's main thread is blocked in a read (of its queue)."""
    try:
        syscall = Path(f"/proc/{pid}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return syscall in _READ_SYSCALLS.get(platform.machine(), set())
