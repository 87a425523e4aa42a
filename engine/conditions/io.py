"""Conditions that reach the outside world: the interface the runner races them through.

Most conditions are pure: ``check`` looks at the clock, the run's data or buffered events
and never blocks. A condition fulfilled only by *attempts* that do I/O (``poll`` runs an
instruction) declares ``io = True`` and implements ``IOCondition`` as well; the runner runs
the due attempts of every such condition concurrently in its thread pool, the first one
fulfilled wins, and it never needs to know the condition's kind. What the plugin keeps in
its armed JSON is its own: the runner reads it only through ``due`` and ``summary``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from engine.conditions import CheckContext, ConditionPlugin, Fulfilment, plugin_for
from engine.language.model import Instruction


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one attempt, produced in a pool thread."""

    started_at: datetime
    finished_at: datetime
    result: Any = None
    error: str = ""
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Settled:
    """An attempt folded into the armed JSON: fulfilled, exhausted, or neither (go on)."""

    armed: dict[str, Any]
    fulfilment: Fulfilment | None = None
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class Summary:
    """All attempts of one condition in one state entry, aggregated (one history record)."""

    attempts: int
    first_at: datetime | None
    last_at: datetime | None
    last_result: Any
    last_error: str


class IOCondition(ConditionPlugin, Protocol):
    """A condition plugin with ``io = True``: fulfilled by attempts the runner races."""

    io: bool

    def due(self, armed: dict[str, Any], now: datetime) -> bool:
        """Whether an attempt should run now."""

    def instruction(self, condition: Any) -> Instruction:
        """What one attempt runs."""

    def attempt(self, execute: Callable[[], Any], now: Callable[[], datetime]) -> Attempt:
        """Run one attempt (in a pool thread); ``execute`` runs ``instruction``."""

    def settle(
        self, condition: Any, armed: dict[str, Any], attempt: Attempt, ctx: CheckContext
    ) -> Settled:
        """Fold one attempt into ``armed`` and decide."""

    def on_error(self, condition: Any) -> str | None:
        """The state to go to when the condition is exhausted (None: the run fails)."""

    def summary(self, armed: dict[str, Any]) -> Summary:
        """The aggregate of the attempts made so far."""


def io_condition(kind: str) -> IOCondition | None:
    """The plugin for ``kind`` when it declares ``io``; None for a pure condition."""
    plugin = plugin_for(kind)
    return cast(IOCondition, plugin) if getattr(plugin, "io", False) else None
