"""An in-memory ``RunStore`` and a scriptable instruction executor for runner tests."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.cursor import RunCursor
from engine.errors import InstructionError, LeaseLost
from engine.language import load_text
from engine.runs import (
    AttemptRecord,
    EventRecord,
    PollRecord,
    RunSnapshot,
    RunStatus,
    Subscription,
    TransitionRecord,
)


@dataclass
class MemoryStore:
    """Keeps what the runner commits; ``lost`` makes every write raise ``LeaseLost``."""

    transitions: list[TransitionRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    polls: dict[tuple[int, int], PollRecord] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    consumed: list[str] = field(default_factory=list)
    commits: int = 0
    releases: int = 0
    renewals: int = 0
    outside_entered: int = 0  # waits on the outside world (instruction calls)
    away: bool = False  # inside ``outside``: the store must not be written
    lost: bool = False
    saved: RunSnapshot | None = None

    def commit(self, run, *, transitions=(), attempts=(), polls=(), subscriptions=None,
               consumed_events=(), release=False, wake_at=None) -> bool:
        assert not self.away, "a commit while the store had lent its connection"
        if self.lost:
            raise LeaseLost(run.id)
        self.commits += 1
        self.saved = copy.deepcopy(run)
        self.transitions.extend(transitions)
        self.attempts.extend(attempts)
        for poll in polls:
            self.polls[(poll.entry, poll.transition_index)] = poll
        if subscriptions is not None:
            self.subscriptions = list(subscriptions)
        self.consumed.extend(consumed_events)
        if release:
            self.releases += 1
        return True

    def renew_lease(self, run) -> None:
        assert not self.away, "a renewal while the store had lent its connection"
        if self.lost:
            raise LeaseLost(run.id)
        self.renewals += 1

    @contextlib.contextmanager
    def outside(self):
        self.outside_entered += 1
        self.away = True
        try:
            yield
        finally:
            self.away = False

    def events_for(self, run, subscription: Subscription) -> Sequence[EventRecord]:
        return [
            e
            for e in self.events
            if e.name == subscription.event
            and e.id not in self.consumed
            and (e.correlation is None or e.correlation == subscription.correlation)
        ]

    def path(self) -> list[tuple[str | None, str | None, str]]:
        return [(t.from_state, t.to_state, str(t.trigger)) for t in self.transitions]


def new_run(
    yaml_text: str, now: datetime, input: dict | None = None, deadline_at: datetime | None = None
) -> RunSnapshot:
    task = load_text(yaml_text)
    return RunSnapshot(
        id="run-1",
        task=task,
        status=RunStatus.PENDING,
        state=None,
        entry=0,
        state_entered_at=None,
        input=input or {},
        data={},
        cursor=RunCursor.empty(),
        created_at=now,
        deadline_at=deadline_at,
    )


class ScriptedHttp:
    """Stands in for the http executor: answers from a list of callables, one per call."""

    kind = "http"

    def __init__(self, answers: list[Callable[[Any, Any], Any]]):
        self.answers = list(answers)
        self.calls: list[tuple[Any, Any]] = []

    def execute(self, spec, ctx):
        self.calls.append((spec, ctx))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(spec, ctx)


def ok(body: Any, status: int = 200) -> Callable[[Any, Any], Any]:
    return lambda spec, ctx: {"status": status, "body": body, "headers": {}}


def fail(error_class: str = "5xx", message: str = "HTTP 503") -> Callable[[Any, Any], Any]:
    def raise_(spec, ctx):
        raise InstructionError(
            message,
            error_class=error_class,
            retryable=error_class in {"5xx", "429", "connection", "timeout"},
        )

    return raise_
