"""``wait``: fulfilled at a due time fixed when the state is entered (a duration after entry,
or a timestamp rendered from the run's data). The due time is persisted, so the wait holds
no worker and survives restarts; a late check still reports the due time as the moment of
fulfilment, which is what the race against the state timeout compares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.clock import from_iso, to_iso
from engine.conditions import CheckContext, Fulfilment, register
from engine.errors import ExpressionError
from engine.language.model import WaitCondition


def parse_moment(value: Any, expression: str) -> datetime:
    """A rendered ``until``: a datetime, ISO 8601 text, or epoch seconds. Naive means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ExpressionError(
                expression, f"wait.until rendered {value!r}, which is not an ISO 8601 time"
            ) from None
    else:
        raise ExpressionError(
            expression, f"wait.until rendered {value!r}; expected a time or epoch seconds"
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Wait:
    kind = "wait"

    def arm(self, condition: WaitCondition, ctx: CheckContext) -> dict[str, Any]:
        if condition.duration is not None:
            due = ctx.entered_at + condition.duration
        else:
            due = parse_moment(ctx.render(condition.until), condition.until or "")
        return {"due": to_iso(due)}

    def check(
        self, condition: WaitCondition, armed: dict[str, Any], ctx: CheckContext
    ) -> Fulfilment | None:
        due = from_iso(armed["due"])
        if due is not None and due <= ctx.now:
            return Fulfilment(at=max(due, ctx.armed_at), detail={"due": armed["due"]})
        return None

    def wake_at(self, condition: WaitCondition, armed: dict[str, Any]) -> datetime | None:
        return from_iso(armed["due"])

    def subscription(self, condition: WaitCondition, armed: dict[str, Any]) -> None:
        return None


register(Wait())
