"""``when``: a predicate over the run's data, for branching on instruction results.

Data only changes when the run moves, so the predicate is evaluated each time the run is
checked; it is fulfilled at the moment of the check that found it true.
"""

from __future__ import annotations

from typing import Any

from engine.conditions import CheckContext, Fulfilment, register
from engine.language.model import WhenCondition


class When:
    kind = "when"

    def arm(self, condition: WhenCondition, ctx: CheckContext) -> dict[str, Any]:
        return {}

    def check(
        self, condition: WhenCondition, armed: dict[str, Any], ctx: CheckContext
    ) -> Fulfilment | None:
        if ctx.evaluate(condition.predicate):
            return Fulfilment(at=ctx.armed_at, detail={"when": condition.predicate})
        return None

    def wake_at(self, condition: WhenCondition, armed: dict[str, Any]) -> None:
        return None

    def subscription(self, condition: WhenCondition, armed: dict[str, Any]) -> None:
        return None


register(When())
