"""The port through which the runner persists a run: implemented by ``taskapp`` on Django's
ORM, and by an in-memory fake in engine tests. The runner never writes anything else."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from engine.runs import (
    AttemptRecord,
    EventRecord,
    PollRecord,
    RunSnapshot,
    Subscription,
    TransitionRecord,
)


class RunStore(Protocol):
    def commit(
        self,
        run: RunSnapshot,
        *,
        transitions: Sequence[TransitionRecord] = (),
        attempts: Sequence[AttemptRecord] = (),
        polls: Sequence[PollRecord] = (),
        subscriptions: Sequence[Subscription] | None = None,
        consumed_events: Sequence[str] = (),
        release: bool = False,
        wake_at: datetime | None = None,
    ) -> bool:
        """Write the run's new fields and its records in one transaction, guarded by the
        lease taken when the step began. ``transitions`` are in the order they happened.

        With ``release`` the same write gives the lease back and sets the next wake-up,
        unless an event or a control request reached the run during the step: then the
        records are committed, the lease is kept, and False is returned so the caller looks
        at the run again. Returns True otherwise.

        ``subscriptions`` ``None`` leaves them as they are; a sequence replaces them.

        Raises:
            LeaseLost: the run was taken over by another worker; nothing was written.
        """

    def renew_lease(self, run: RunSnapshot) -> None:
        """Extend this worker's lease before work that may take a while.

        Raises:
            LeaseLost: the lease expired and another worker owns the run.
        """

    def outside(self) -> AbstractContextManager[None]:
        """Wrap a wait on the outside world (an instruction's call), entered with nothing
        left uncommitted: the store may lend what it holds meanwhile (a database
        connection, so that a worker's calls in flight are not bounded by its connections)
        and takes it back on exit."""

    def events_for(self, run: RunSnapshot, subscription: Subscription) -> Sequence[EventRecord]:
        """Unexpired events this run has not consumed that match ``subscription``: addressed
        to the run, or carrying its correlation value; oldest first. An event may predate
        the run (it was buffered until someone subscribed)."""
