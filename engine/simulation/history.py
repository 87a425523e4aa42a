"""What a dry run reports: the run's history as a real run records it (transitions with
their virtual times, instruction attempts, poll aggregates, the final status and data), and
how the simulation ended, as JSON and as text."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.clock import to_iso
from engine.runs import AttemptRecord, PollRecord, TransitionRecord
from engine.simulation.bounds import Bound, End


@dataclass(slots=True)
class Simulation:
    task: str
    version: int
    start: datetime
    now: datetime  # the virtual time the simulation stopped at
    status: str  # the run's status as stored: "waiting" when it did not finish
    state: str | None
    data: dict[str, Any]
    error: dict[str, Any] | None
    end: End
    message: str
    bound: Bound | None = None
    steps: int = 0
    wall_seconds: float = 0.0
    transitions: list[TransitionRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    polls: list[PollRecord] = field(default_factory=list)
    consumed_events: list[str] = field(default_factory=list)

    def offset(self, moment: datetime | None) -> float | None:
        return None if moment is None else round((moment - self.start).total_seconds(), 6)

    def path(self) -> list[tuple[str, str, str]]:
        """(from, to, trigger) per transition, "" for none: as ``Transition`` rows read."""
        return [(t.from_state or "", t.to_state or "", str(t.trigger)) for t in self.transitions]

    def attempt_counts(self) -> dict[str, int]:
        """Attempts per ``state/instruction``."""
        counts: dict[str, int] = {}
        for a in self.attempts:
            key = f"{a.state}/{a.instruction}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task, "version": self.version, "status": self.status,
            "state": self.state, "data": self.data, "error": self.error,
            "end": str(self.end), "bound": str(self.bound) if self.bound else None,
            "message": self.message, "start": to_iso(self.start), "now": to_iso(self.now),
            "elapsed": self.offset(self.now), "steps": self.steps,
            "transitions": [self._transition(t) for t in self.transitions],
            "attempts": [self._attempt(a) for a in self.attempts],
            "polls": [self._poll(p) for p in self.polls],
            "consumed_events": self.consumed_events,
        }

    def _transition(self, t: TransitionRecord) -> dict[str, Any]:
        return {"from_state": t.from_state, "to_state": t.to_state, "trigger": str(t.trigger),
                "at": to_iso(t.at), "elapsed": self.offset(t.at),
                "condition_kind": t.condition_kind, "transition_index": t.transition_index,
                "time_in_state": t.time_in_state, "entry": t.entry, "detail": t.detail}

    def _attempt(self, a: AttemptRecord) -> dict[str, Any]:
        return {"state": a.state, "entry": a.entry, "instruction": a.instruction,
                "kind": a.kind, "attempt": a.attempt, "ok": a.ok,
                "at": to_iso(a.started_at), "elapsed": self.offset(a.started_at),
                "error": a.error, "error_class": a.error_class}

    def _poll(self, p: PollRecord) -> dict[str, Any]:
        return {"state": p.state, "entry": p.entry, "transition_index": p.transition_index,
                "target": p.target, "attempts": p.attempts, "outcome": str(p.outcome),
                "first_at": to_iso(p.first_at), "last_at": to_iso(p.last_at),
                "last_result": p.last_result, "last_error": p.last_error}

    def to_text(self) -> str:
        lines = [f"{self.task} v{self.version}: {self.status}"
                 f"{f' in {self.state}' if self.state else ''} after "
                 f"{_span(self.offset(self.now) or 0.0)} ({self.end}: {self.message})"]
        for t in self.transitions:
            how = t.condition_kind or ""
            lines.append(f"  {_span(self.offset(t.at) or 0.0):>10}  {t.from_state or '-':>18} -> "
                         f"{t.to_state or '-':<18} {t.trigger}{f' ({how})' if how else ''}")
        for a in self.attempts:
            outcome = "ok" if a.ok else f"failed ({a.error_class}): {a.error}"
            lines.append(f"  attempt  {_span(self.offset(a.started_at) or 0.0):>10}  "
                         f"{a.state}/{a.instruction} #{a.attempt} {outcome}")
        for p in self.polls:
            lines.append(f"  poll     {p.state} -> {p.target}: {p.attempts} attempt(s), "
                         f"{p.outcome}")
        lines.append(f"  data: {json.dumps(self.data, sort_keys=True, default=str)}")
        if self.error:
            lines.append(f"  error: {self.error.get('code')}: {self.error.get('message')}")
        return "\n".join(lines)


def _span(seconds: float) -> str:
    """``+1d2h``-style offsets: virtual times are read as durations from the start."""
    if seconds < 60:
        return f"+{seconds:g}s"
    parts, left = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "+" + "".join(parts)
