"""A transition without a condition: fulfilled as soon as the state's instructions are done."""

from __future__ import annotations

from typing import Any

from engine.conditions import CheckContext, Fulfilment, register


class Always:
    kind = "always"

    def arm(self, condition: None, ctx: CheckContext) -> dict[str, Any]:
        return {}

    def check(self, condition: None, armed: dict[str, Any], ctx: CheckContext) -> Fulfilment:
        return Fulfilment(at=ctx.armed_at)

    def wake_at(self, condition: None, armed: dict[str, Any]) -> None:
        return None

    def subscription(self, condition: None, armed: dict[str, Any]) -> None:
        return None


register(Always())
