"""A suspect run is stepped alone in its worker process, so a crash is charged to it alone.

A worker process drives up to ``STEP_THREADS`` runs at once (``taskapp.steps``). When the
process dies — a poison run exhausted its memory, the kernel or an operator killed it — every
run it had in flight counts a crashed step towards ``MAX_STEP_CRASHES``: the claim cannot
tell the run that killed the process from its neighbours. A poison run then takes its
neighbours down with it, claim after claim, until they all fail with ``step_crashes``.

So a run whose previous step did not end cleanly is a *suspect*: its next step waits until no
other step is in flight in its process, and no new step starts beside it for its first
``SUSPECT_ALONE_SECONDS``. Dying again there, it is charged alone; an innocent neighbour's
isolated step ends cleanly and its count starts over. The window is bounded so a suspect that
hangs holds its process's other steps back for that long at most, not for its whole step.

Steps in flight beside a waiting suspect finish in their own time (their step and call
limits bound them); steps that would begin wait for the suspect instead of starving it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

# What a thread does while it waits here: a step thread lends its pooled database connection
# (``taskapp.dbpool.lent``), or the steps it waits for could wait for that connection in turn.
Waiting = Callable[[], AbstractContextManager[None]]


class StepIsolation:
    """Shared holds for ordinary steps, an exclusive window for a suspect's step."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No step in flight: at start, and in a forked worker whatever its parent held."""
        self._changed = threading.Condition()
        self._shared = 0  # ordinary steps in flight
        self._suspects_waiting = 0
        self._alone_until = 0.0  # monotonic end of the current suspect's window
        self._suspect_running = False
        # This thread's nesting: a step begun inside another in the same thread (django-q2's
        # ``sync`` mode runs the next step in the caller) is covered by the outer hold.
        self._mine = threading.local()

    def _depth(self) -> int:
        return getattr(self._mine, "depth", 0)

    @contextmanager
    def shared(self, waiting: Waiting = nullcontext) -> Iterator[None]:
        """Hold while an ordinary step runs; waits (inside ``waiting()``) while a suspect
        waits or is alone."""
        outer = self._depth() == 0
        if outer:
            took = []

            def take() -> None:
                self._shared += 1
                took.append(True)

            try:
                self._enter(lambda: not (self._suspects_waiting or self._window_open()),
                            take, waiting)
            except BaseException:  # noqa: BLE001 - undone, then raised again
                if took:
                    with self._changed:
                        self._shared -= 1
                        self._changed.notify_all()
                raise
        self._mine.depth = self._depth() + 1
        try:
            yield
        finally:
            self._mine.depth = max(self._depth() - 1, 0)
            if outer:
                with self._changed:
                    self._shared = max(self._shared - 1, 0)  # 0 already, after a reset
                    self._changed.notify_all()

    def _enter(self, ready: Callable[[], bool], take: Callable[[], None],
               waiting: Waiting) -> None:
        """``take()`` once ``ready()``, under the lock; a wait, if one is needed, happens
        inside ``waiting()`` and outside the lock for its entry and exit (taking a database
        connection back may itself wait, for a step that needs this lock to end)."""
        with self._changed:
            if ready():
                take()
                return
        with waiting(), self._changed:
            while not ready():
                self._changed.wait(timeout=self._window_left() or None)
            take()

    @contextmanager
    def upgrade(self, seconds: float, waiting: Waiting = nullcontext) -> Iterator[None]:
        """From inside ``shared``: let go of the shared hold, be alone (see ``alone``), take
        the shared hold back. Nested in an outer step of the same thread, nothing can be
        alone: it passes through."""
        if self._depth() != 1:
            yield
            return
        with self._changed:
            self._shared -= 1
            self._changed.notify_all()
        try:
            with self._alone(seconds, waiting):
                yield
        finally:
            with self._changed:
                self._shared += 1

    @contextmanager
    def _alone(self, seconds: float, waiting: Waiting) -> Iterator[None]:
        """Begins once no other step is in flight; keeps new steps out for ``seconds`` (or
        until it ends, if sooner)."""
        with self._changed:
            self._suspects_waiting += 1  # from now on, no ordinary step begins

        began = []

        def begin() -> None:
            self._suspects_waiting -= 1
            self._suspect_running = True
            self._alone_until = time.monotonic() + seconds
            self._changed.notify_all()  # steps waiting on the suspect now wait for its window
            began.append(True)

        try:
            self._enter(lambda: not (self._shared or self._suspect_running), begin, waiting)
        except BaseException:  # noqa: BLE001 - undone, then raised again
            with self._changed:  # never leave the others waiting on a suspect gone
                if began:
                    self._suspect_running, self._alone_until = False, 0.0
                else:
                    self._suspects_waiting -= 1
                self._changed.notify_all()
            raise
        try:
            yield
        finally:
            with self._changed:
                self._suspect_running = False
                self._alone_until = 0.0
                self._changed.notify_all()

    def _window_open(self) -> bool:
        return self._suspect_running and time.monotonic() < self._alone_until

    def _window_left(self) -> float:
        return max(0.0, self._alone_until - time.monotonic()) if self._suspect_running else 0.0

    def state(self) -> tuple[int, bool]:
        """(ordinary steps holding, whether a suspect is running): a gauge for tests."""
        with self._changed:
            return self._shared, self._suspect_running


isolation = StepIsolation()  # one per process
os.register_at_fork(after_in_child=isolation.reset)
