"""What a run's page shows, read once per render: the page itself and its live panels
(``/runs/<id>/panels/``, fetched again by dashboard.js whenever the run changes) are built
from the same context, so a live refresh shows exactly what a reload would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from dashboard import selectors
from dashboard.templatetags.dashboard import human_seconds
from engine.diagram import diagram_of, to_svg
from engine.instructions import idempotency_key
from engine.language.model import SubscribeCondition
from engine.runs import RunStatus
from taskapp.models import Run, Transition
from taskapp.permissions import can_control_runs
from taskapp.selectors import definition_of


@dataclass(frozen=True, slots=True)
class StateTime:
    """Time a run spent in one state, over all its visits (the current one so far)."""

    state: str
    visits: int
    seconds: float
    current: bool

    @property
    def human(self) -> str:
        return human_seconds(self.seconds)


def panels(run: Run, user: Any, transitions: list[Transition] | None = None) -> dict[str, Any]:
    """The context of the live panels (``_run_panels.html``)."""
    if transitions is None:
        transitions = selectors.run_transitions(run.pk)
    attempts = selectors.run_attempts(run.pk)
    for attempt in attempts:
        attempt.key = idempotency_key(run.pk, attempt.entry, attempt.instruction)
    status = RunStatus(run.status)
    now = timezone.now()
    return {
        "run": run,
        "now": now,
        "in_state": _in_state(run, now),
        "state_times": state_times(run, transitions),
        "attempts": attempts,
        "polls": selectors.run_polls(run.pk),
        "events": selectors.run_events_taken(run.pk),
        "wake_at": None if status.finished else run.wake_at,
        "can_control": can_control_runs(user),
        "can_cancel": not status.finished,
        "can_redrive": status.redrivable,
    }


def page(run: Run, user: Any) -> dict[str, Any]:
    """The whole page's context: the panels, the diagram and the transitions table."""
    task = definition_of(run.definition_id)
    transitions = selectors.run_transitions(run.pk)
    return {
        **panels(run, user, transitions),
        "diagram": to_svg(diagram_of(task)),
        "transitions": transitions,
        "last_seq": transitions[-1].seq if transitions else 0,
        "redrive_states": [s.name for s in task.states if not s.is_final],
        "event_names": sorted({t.condition.event for s in task.states for t in s.transitions
                               if isinstance(t.condition, SubscribeCondition)}),
    }


def _in_state(run: Run, now: datetime) -> float | None:
    if run.state_entered_at is None:
        return None
    return max(0.0, ((run.finished_at or now) - run.state_entered_at).total_seconds())


def state_times(run: Run, transitions: list[Transition]) -> list[StateTime]:
    """Per state, in the order first entered: visits and total time, the current visit
    counted until now (or until the run finished)."""
    times: dict[str, list[float]] = {}
    for t in transitions:
        if t.to_state:
            times.setdefault(t.to_state, [0, 0.0])[0] += 1
        if t.from_state:
            times.setdefault(t.from_state, [0, 0.0])[1] += t.time_in_state
    if run.state and run.state_entered_at and not run.is_finished:
        times.setdefault(run.state, [1, 0.0])[1] += max(
            0.0, (timezone.now() - run.state_entered_at).total_seconds())
    return [StateTime(name, int(v[0]), v[1], name == run.state)
            for name, v in times.items()]
