"""The queues between a cluster's processes — tasks from its pusher to its workers, results
from its workers to its monitor — made so that no killed process can wedge them.

django-q2 hands tasks to its workers through one ``multiprocessing.Queue``. A reader of
that queue takes the queue's lock and then blocks reading the pipe under it, so a worker
SIGKILLed while it waits for a task (what an idle worker, or one whose step pool has room,
is doing nearly all the time) dies holding the lock: no other worker of the cluster, and
none the Sentinel starts in its place, ever receives a task again.

This queue has no lock. It is a ``SOCK_SEQPACKET`` Unix socket pair shared by every
process the Sentinel forks: the kernel hands each message whole to exactly one ``recv``,
so any number of workers read at once, and one killed while it waits for a message
takes no message and holds nothing. A ``put`` sends its message whole, in the caller's
thread, or raises (no feeder thread, no write lock).

The same goes for the queue that carries results from the workers to the cluster's one
monitor, which would wedge the same way when the monitor is killed waiting on it (the
broker's acknowledgements would stop, and then, once its pipe filled, the workers' exits).
A worker puts its result holding a lock the Sentinel's guard also takes, so a result put
must never block: when the monitor has not read 256 KiB of results (dead, or stuck on the
database) a result is dropped and logged (``Overflow.DROP``). A dropped result is only a
missing acknowledgement: the ORM broker delivers the task again after ``retry``, and a run
id advanced twice is advanced once (the claim decides).

What it leaves to others: what a task means (django-q2's worker and monitor), and the fate
of a task a worker had received when it was killed (the broker's redelivery for the ORM
broker, the run's backstop wake-up for Redis, as before).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import pickle
import queue
import select
import socket
import struct
import termios
import time
from collections import deque
from enum import StrEnum

log = logging.getLogger("async_states.cluster_queue")

# Seconds a blocked ``put`` (the pusher, the queue full) waits for a reader's "taken" note
# before it looks again anyway: a note is only a hint (a reader killed between its recv
# and its note sends none), the kernel's count of unread bytes decides.
_FULL_RECHECK_SECONDS = 0.05
# Asked of the kernel for the writer's buffer, which also bounds one message (Linux
# doubles it, capped at twice net.core.wmem_max, 212992 by default: 256 KiB anywhere).
# Each ``get`` reads into a buffer that large. A task carries at most WAKE_BATCH run ids:
# under 1 KiB.
_WANTED_SNDBUF = 1 << 17


class Overflow(StrEnum):
    """What ``put`` does when the message cannot be sent at once."""

    WAIT = "wait"  # wait for room (the pusher: backpressure keeps tasks in the broker)
    DROP = "drop"  # drop it and log (a worker's result: see the module's docstring)


class MessageTooLarge(ValueError):
    """A message longer than the socket can carry in one piece."""

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(f"a cluster queue message of {size} bytes exceeds the {limit} bytes "
                         "one message may hold (net.core.wmem_max bounds it): queue run ids "
                         "in smaller batches")


class KillSafeQueue:
    """A multi-producer, multi-consumer queue between forked processes, with the part of
    ``multiprocessing.Queue``'s interface django-q2 uses.

    ``maxsize`` bounds the messages put and not yet taken (django-q2's ``queue_limit``, so
    a cluster does not hoard tasks other clusters could run). The count is exact in the
    process that puts (the pusher: it remembers the sizes of what it sent, and unread
    messages are the newest, since the socket is first in, first out), approximate in any
    other process (``qsize`` there is 0 or 1)."""

    def __init__(self, maxsize: int = 0, overflow: Overflow = Overflow.WAIT):
        self._overflow = overflow
        self._reader, self._writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _WANTED_SNDBUF)
        # The kernel keeps 32 bytes of the buffer for itself (EMSGSIZE past sndbuf - 32).
        self.max_message_bytes = self._writer.getsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF) - 32
        self._maxsize = maxsize
        self._sent: deque[int] = deque()  # sizes of this process's messages maybe unread
        # Bounded only: each get sends a one-byte "taken" note, on which a put waiting for
        # room sleeps (waking it at once instead of polling the count).
        self._notes = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) if maxsize else None

    def put(self, obj: object, block: bool = True, timeout: float | None = None) -> None:
        """Send ``obj`` as one message; with ``maxsize``, wait (or raise ``queue.Full``)
        while the queue holds that many."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        if self._overflow is Overflow.DROP:
            self._send_or_drop(data)
            return
        if len(data) > self.max_message_bytes:
            raise MessageTooLarge(len(data), self.max_message_bytes)
        self._wait_for_room(block, timeout)
        try:
            self._writer.send(data)
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                raise MessageTooLarge(len(data), self.max_message_bytes) from exc
            raise
        self._sent.append(len(data))

    def _send_or_drop(self, data: bytes) -> None:
        try:
            self._writer.send(data, socket.MSG_DONTWAIT)
        except OSError as exc:  # BlockingIOError (full) or EMSGSIZE (too large)
            log.warning("cluster_queue.dropped bytes=%d unread=%d: %s (nobody reads the "
                        "queue fast enough; the broker delivers an unacknowledged task "
                        "again)", len(data), _unread_bytes(self._reader), exc)

    def get(self, block: bool = True, timeout: float | None = None) -> object:
        """The oldest message nobody has taken; waits for one (at most ``timeout``), or
        raises ``queue.Empty``. A blocking ``recv`` waits its turn: the kernel wakes one
        waiting reader per message, the longest waiting first, so an idle worker gets a
        task before one just back from its last."""
        if block and timeout is None:
            return self._taken(self._reader.recv(self.max_message_bytes))
        deadline = time.monotonic() + ((timeout or 0.0) if block else 0.0)
        while True:
            try:  # another reader may take what select saw: never block in recv here
                return self._taken(self._reader.recv(self.max_message_bytes,
                                                     socket.MSG_DONTWAIT))
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise queue.Empty from None
                select.select([self._reader], [], [], left)

    def qsize(self) -> int:
        """Messages put and not yet taken (see the class: exact only where they were put)."""
        unread = _unread_bytes(self._reader)
        count = 0
        for size in reversed(self._sent):
            if unread <= 0:
                break
            unread -= size
            count += 1
        while len(self._sent) > count:  # older ones were all read
            self._sent.popleft()
        return count + (1 if unread > 0 else 0)

    def empty(self) -> bool:
        return _unread_bytes(self._reader) == 0

    def close(self) -> None:
        """Nothing to flush: ``put`` sent its message before it returned. The sockets stay
        open for the other processes that share them."""

    def join_thread(self) -> None:
        """No feeder thread to wait for (``multiprocessing.Queue`` has one)."""

    def cancel_join_thread(self) -> None:
        """No feeder thread (see ``join_thread``)."""

    def _wait_for_room(self, block: bool, timeout: float | None) -> None:
        if not self._maxsize:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.qsize() >= self._maxsize:
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise queue.Full
            self._await_note(deadline)

    def _await_note(self, deadline: float | None) -> None:
        """Sleep until a reader notes a message taken (or a while passed), then drop the
        notes: the count is read again from the kernel."""
        wait = _FULL_RECHECK_SECONDS
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        select.select([self._notes[0]], [], [], wait)
        try:
            while True:
                self._notes[0].recv(64, socket.MSG_DONTWAIT)
        except BlockingIOError:
            pass

    def _taken(self, data: bytes) -> object:
        if not data:  # every writer closed: cannot happen while this process holds one
            raise EOFError("the cluster queue's writers are all closed")
        if self._notes is not None:
            try:  # a hint for a waiting put; never waits (full of unread notes: dropped)
                self._notes[1].send(b"t", socket.MSG_DONTWAIT)
            except OSError:
                pass
        return pickle.loads(data)


def _unread_bytes(sock: socket.socket) -> int:
    """Bytes of all the messages waiting in ``sock`` (Linux sums a SEQPACKET socket's
    whole receive queue for FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
