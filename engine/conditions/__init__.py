"""Conditions as plugins: one module per kind, registered here by kind name.

A condition is *armed* when its state's instructions are done: it computes what it needs
(a due time, a correlation value, a poll schedule) into a small JSON dict that the run keeps
in its cursor, so a run can park, lose its worker, and be checked again later by any worker.
``check`` must not block. Conditions with I/O declare ``io = True`` and also implement
``engine.conditions.io.IOCondition``; the runner races those in a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from engine.errors import UnknownCondition
from engine.registry import Registry
from engine.runs import EventRecord, RunSnapshot, Subscription


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a condition may look at. ``render``/``evaluate`` see the run's template context
    (input, data, run, secrets) plus the extras given to them.

    ``entered_at`` is when the run entered the state (durations count from there);
    ``armed_at`` is when the race began, after the state's instructions: a condition that is
    true as soon as it is looked at (no condition, ``when``, a buffered event) is fulfilled
    at ``armed_at``, so ties among them go to the earlier-declared transition.
    """

    run: RunSnapshot
    now: datetime
    entered_at: datetime
    armed_at: datetime
    render: Callable[..., Any]
    evaluate: Callable[..., bool]
    events: Callable[[Subscription], Sequence[EventRecord]]


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """A condition was fulfilled at ``at`` (the moment it became true, not when noticed)."""

    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    save: tuple[tuple[str, Any], ...] = ()
    consumed_event: str | None = None


class ConditionPlugin(Protocol):
    kind: str

    def arm(self, condition: Any, ctx: CheckContext) -> dict[str, Any]: ...

    def check(
        self, condition: Any, armed: dict[str, Any], ctx: CheckContext
    ) -> Fulfilment | None: ...

    def wake_at(self, condition: Any, armed: dict[str, Any]) -> datetime | None: ...

    def subscription(self, condition: Any, armed: dict[str, Any]) -> Subscription | None: ...


REGISTRY: Registry[ConditionPlugin] = Registry("condition", UnknownCondition)


def register(plugin: ConditionPlugin, *, replace: bool = False) -> ConditionPlugin:
    """Make ``plugin`` the one for its kind (see ``engine.registry.Registry.register``)."""
    return REGISTRY.register(plugin, replace=replace)


def plugin_for(kind: str) -> ConditionPlugin:
    """The plugin for ``kind``; ``UnknownCondition`` names the known kinds."""
    return REGISTRY.get(kind)


def registered_kinds() -> tuple[str, ...]:
    return REGISTRY.kinds()


from engine.conditions import always, poll, subscribe, wait, when  # noqa: E402,F401
