"""The in-memory ``RunStore`` of a dry run: it keeps what the runner commits (the run's
history) and serves the script's events as they arrive on the virtual clock.

Nothing here is shared with real runs: each simulation has its own store, and it never
loses a lease (there is one runner and no other worker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from engine.clock import Clock
from engine.runs import (
    AttemptRecord,
    EventRecord,
    PollRecord,
    RunSnapshot,
    Subscription,
    TransitionRecord,
)
from engine.simulation.script import ScriptedEvent


class SimStore:
    """Keeps one run's history; ``events`` are the script's, visible once the clock
    reaches their arrival time."""

    def __init__(self, *, clock: Clock, start: datetime, events: Sequence[ScriptedEvent]):
        self.clock = clock
        self.transitions: list[TransitionRecord] = []
        self.attempts: list[AttemptRecord] = []
        self.polls: dict[tuple[int, int], PollRecord] = {}
        self.subscriptions: list[Subscription] = []
        self.consumed: list[str] = []
        self.commits = 0
        self.events = [
            EventRecord(id=str(i + 1), name=e.name, payload=e.data, received_at=start + e.at,
                        key=e.key, correlation=e.correlation)
            for i, e in enumerate(events)
        ]

    def commit(
        self, run: RunSnapshot, *, transitions: Sequence[TransitionRecord] = (),
        attempts: Sequence[AttemptRecord] = (), polls: Sequence[PollRecord] = (),
        subscriptions: Sequence[Subscription] | None = None,
        consumed_events: Sequence[str] = (), release: bool = False,
        wake_at: datetime | None = None,
    ) -> bool:
        self.commits += 1
        self.transitions.extend(transitions)
        self.attempts.extend(attempts)
        for poll in polls:
            self.polls[(poll.entry, poll.transition_index)] = poll
        if subscriptions is not None:
            self.subscriptions = list(subscriptions)
        self.consumed.extend(consumed_events)
        return True

    @contextmanager
    def outside(self) -> Iterator[None]:
        """A dry run holds no connection to lend while a scripted call is "out"."""
        yield

    def renew_lease(self, run: RunSnapshot) -> None:
        """One runner, no other worker: the lease is never lost."""

    def events_for(self, run: RunSnapshot, subscription: Subscription) -> Sequence[EventRecord]:
        now = self.clock.now()
        return [e for e in self.events
                if e.received_at <= now and self._addressed(e, subscription)]

    def _addressed(self, event: EventRecord, subscription: Subscription) -> bool:
        """As the real store: the event's name, not consumed, and sent to the run (no
        correlation) or carrying the subscription's correlation value."""
        return (event.name == subscription.event and event.id not in self.consumed
                and (event.correlation is None
                     or event.correlation == subscription.correlation))

    def next_event_at(self, after: datetime) -> datetime | None:
        """When the next event that a current subscription waits for arrives (it wakes the
        run, as sending it to a real run does)."""
        arrivals = [e.received_at for e in self.events if e.received_at > after
                    and any(self._addressed(e, s) for s in self.subscriptions)]
        return min(arrivals, default=None)
