"""The run cursor: the engine's private progress inside the current state, as one type.

A run keeps its cursor in one JSON column so it can park, lose its worker, and be picked up
by any other worker. The runner works on a ``RunCursor``; the JSON form exists only at the
store boundary (``RunCursor.from_json`` when a snapshot is read, ``to_json`` when it is
committed). The JSON keeps the shape rows have always had (``phase``, ``index``,
``attempt``, ``retry_at``, ``last_error``, ``timeout_at``, ``armed_at``, ``armed``,
``subscribed``; times as ISO 8601, the armed conditions keyed by the transition's index as a
string), so runs parked before this type existed resume unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from engine.clock import from_iso, to_iso


class Phase(StrEnum):
    """What the run is doing in its state: running its instructions, or racing conditions."""

    INSTRUCTIONS = "instructions"
    CONDITIONS = "conditions"


@dataclass(frozen=True, slots=True)
class LastError:
    """Why the current instruction's last attempt failed (its retry policy reads the class)."""

    message: str
    error_class: str

    def to_json(self) -> dict[str, str]:
        return {"message": self.message, "error_class": self.error_class}


@dataclass(slots=True)
class RunCursor:
    """Progress inside the current state. An empty cursor (``phase`` None) belongs to a run
    that is not in a state: not started yet, or finished.

    ``armed`` holds, per outgoing transition index, the JSON its condition plugin computed
    when armed (plugin-owned; None until the conditions are armed).
    """

    phase: Phase | None = None
    index: int = 0  # the next instruction to run
    attempt: int = 0  # attempts made of that instruction
    retry_at: datetime | None = None
    last_error: LastError | None = None
    timeout_at: datetime | None = None  # the state's timeout, fixed on entry
    armed_at: datetime | None = None  # when the race of conditions began
    armed: dict[int, dict[str, Any]] | None = None
    subscribed: bool = False  # subscriptions were committed for this state entry
    # keys of the stored JSON this type does not know, kept so nothing is lost on a rewrite
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def entering(cls, timeout_at: datetime | None) -> RunCursor:
        """The cursor of a fresh entry into a non-final state (the only way one is begun)."""
        return cls(phase=Phase.INSTRUCTIONS, timeout_at=timeout_at)

    @classmethod
    def empty(cls) -> RunCursor:
        """The cursor of a run outside any state (finished, or not started)."""
        return cls()

    @property
    def is_empty(self) -> bool:
        return self.phase is None

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RunCursor:
        """Read a stored cursor (any row this engine has written, old or new).

        Raises:
            ValueError: ``raw`` is not a mapping, or a field has an impossible value.
        """
        if not raw:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError(f"a run cursor must be a JSON object, not {type(raw).__name__}")
        known = {"phase", "index", "attempt", "retry_at", "last_error", "timeout_at",
                 "armed_at", "armed", "subscribed"}
        error, armed = raw.get("last_error"), raw.get("armed")
        return cls(
            phase=Phase(raw["phase"]) if raw.get("phase") else None,
            index=int(raw.get("index", 0)),
            attempt=int(raw.get("attempt", 0)),
            retry_at=from_iso(raw.get("retry_at")),
            last_error=LastError(str(error["message"]), str(error.get("error_class", "error")))
            if error else None,
            timeout_at=from_iso(raw.get("timeout_at")),
            armed_at=from_iso(raw.get("armed_at")),
            armed={int(k): v for k, v in armed.items()} if armed is not None else None,
            subscribed=bool(raw.get("subscribed", False)),
            extra={k: v for k, v in raw.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (``{}`` for an empty cursor); ``from_json`` reads it back equal."""
        if self.phase is None:
            return dict(self.extra)
        out: dict[str, Any] = {
            **self.extra,
            "phase": str(self.phase), "index": self.index, "attempt": self.attempt,
            "retry_at": to_iso(self.retry_at), "timeout_at": to_iso(self.timeout_at),
        }
        if self.last_error is not None:
            out["last_error"] = self.last_error.to_json()
        if self.armed_at is not None:
            out["armed_at"] = to_iso(self.armed_at)
        if self.armed is not None:
            out["armed"] = {str(k): v for k, v in self.armed.items()}
        if self.subscribed:
            out["subscribed"] = True
        return out
