"""What the engine knows about a run: its status, a snapshot of its row, and the records a
step produces. These are plain data exchanged with the ``RunStore`` (``engine.store``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.cursor import RunCursor
from engine.language.model import TaskDef


class RunStatus(StrEnum):
    """Where a run stands. Grouped below: ``ACTIVE`` (the engine still works on it),
    ``FINISHED`` (it ended), ``REDRIVABLE`` (it ended without succeeding: a redrive may put it
    back to work). Listed in docs/task-language.md and docs/api.md."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def redrivable(self) -> bool:
        return self in REDRIVABLE


FINISHED = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELLED}
)
ACTIVE = frozenset({RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING})
REDRIVABLE = FINISHED - {RunStatus.SUCCEEDED}


def in_order(statuses: frozenset[RunStatus]) -> list[RunStatus]:
    """``statuses`` in the order they are declared (for choices and messages)."""
    return [status for status in RunStatus if status in statuses]


class Trigger(StrEnum):
    """Why a transition happened."""

    START = "start"  # the run entered its start state
    CONDITION = "condition"  # an outgoing transition's condition was fulfilled
    TIMEOUT = "timeout"  # the state's timeout passed (to on_timeout, or failing the run)
    DEADLINE = "deadline"  # the run's deadline passed
    ERROR = "error"  # an instruction or poll failed for good (to on_error, or failing)
    CANCEL = "cancel"
    REDRIVE = "redrive"


class PollOutcome(StrEnum):
    """Where the attempts of one I/O condition (a ``poll``) in one state entry stand."""

    POLLING = "polling"  # still attempting
    FULFILLED = "fulfilled"  # an attempt fulfilled it: its transition was taken
    EXHAUSTED = "exhausted"  # it gave up (max_attempts / max_duration)
    CANCELLED = "cancelled"  # the run left the state some other way


@dataclass(slots=True)
class RunSnapshot:
    """A run as the engine sees it. The runner mutates its own copy and hands it to the
    store to commit; ``cursor`` is the engine's private progress inside the current state.
    """

    id: str
    task: TaskDef
    status: RunStatus
    state: str | None
    entry: int
    state_entered_at: datetime | None
    input: dict[str, Any]
    data: dict[str, Any]
    cursor: RunCursor
    created_at: datetime
    deadline_at: datetime | None = None
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One append-only history row: the run left ``from_state`` for ``to_state``."""

    from_state: str | None
    to_state: str | None
    trigger: Trigger
    at: datetime
    condition_kind: str = ""
    transition_index: int | None = None
    time_in_state: float = 0.0  # seconds spent in from_state
    detail: dict[str, Any] = field(default_factory=dict)
    entry: int = 0  # the entry number of to_state (0 when the run ended outside a state)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt of one instruction (polls are aggregated in ``PollRecord`` instead)."""

    state: str
    entry: int
    instruction: str
    kind: str
    attempt: int
    ok: bool
    started_at: datetime
    duration: float
    error: str = ""
    error_class: str = ""


@dataclass(frozen=True, slots=True)
class PollRecord:
    """The aggregate of all attempts of one poll condition in one state entry."""

    state: str
    entry: int
    transition_index: int
    target: str
    attempts: int
    first_at: datetime | None
    last_at: datetime | None
    outcome: PollOutcome
    last_result: Any = None
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class Subscription:
    """The run waits for events named ``event`` (addressed to it, or carrying ``correlation``)."""

    event: str
    correlation: str | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event that may fulfil a subscription."""

    id: str
    name: str
    payload: Any
    received_at: datetime
    key: str | None = None
    correlation: str | None = None


@dataclass(slots=True)
class StepOutcome:
    """What a step ended with: when the run next needs looking at (None: only an event or
    nothing will wake it), and whether it is finished."""

    wake_at: datetime | None
    finished: bool
    transitions: int = 0
    released: bool = True  # False: an event came during the step; look at the run again
