"""What a step has decided but not yet committed, and the one place it is committed.

The runner queues transitions, attempts, poll aggregates, event consumptions and
subscription changes here and flushes them in one ``RunStore.commit`` (one transaction,
guarded by the lease) whenever something outside the database is about to happen, and at
the end of the step. Transitions are logged only once committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.runs import (
    AttemptRecord,
    PollRecord,
    RunSnapshot,
    Subscription,
    TransitionRecord,
)
from engine.store import RunStore

log = logging.getLogger("async_states.runs")


@dataclass(slots=True)
class Batch:
    transitions: list[TransitionRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    polls: dict[tuple[int, int], PollRecord] = field(default_factory=dict)
    consumed: list[str] = field(default_factory=list)
    subscriptions: Sequence[Subscription] | None = None  # None: unchanged
    dirty: bool = False  # the run's own fields changed since the last commit
    log: bool = True  # log committed transitions (a dry run's are not a real run's)

    def add_polls(self, records: Sequence[PollRecord]) -> None:
        for record in records:
            self.polls[(record.entry, record.transition_index)] = record
        self.dirty = True

    def flush(
        self, store: RunStore, run: RunSnapshot, *, release: bool = False,
        wake_at: datetime | None = None,
    ) -> bool:
        """Commit everything queued with the run's current fields (and, with ``release``,
        give the lease back: see ``RunStore.commit``).

        Raises:
            LeaseLost: nothing was committed; the step must stop.
        """
        released = store.commit(
            run, transitions=self.transitions, attempts=self.attempts,
            polls=list(self.polls.values()), subscriptions=self.subscriptions,
            consumed_events=self.consumed, release=release, wake_at=wake_at,
        )
        if self.log:
            for record in self.transitions:
                _log_transition(run, record)
            if run.status.finished and self.transitions:
                _log_finished(run)
        self.transitions, self.attempts, self.polls, self.consumed = [], [], {}, []
        self.subscriptions, self.dirty = None, False
        return released


def _log_transition(run: RunSnapshot, record: TransitionRecord) -> None:
    log.info(
        "run.transition run=%s task=%s version=%s from=%s to=%s trigger=%s condition=%s "
        "time_in_state=%.3f", run.id, run.task.name, run.task.version, record.from_state,
        record.to_state, record.trigger, record.condition_kind or "-", record.time_in_state,
    )


def _log_finished(run: RunSnapshot) -> None:
    metrics = run.metrics
    log.info(
        "run.finished run=%s task=%s version=%s status=%s state=%s duration=%.3f "
        "transitions=%s attempts=%s failures=%s", run.id, run.task.name, run.task.version,
        run.status, run.state, metrics.get("duration", 0.0), metrics.get("transitions", 0),
        metrics.get("attempts", 0), metrics.get("failures", 0),
    )
