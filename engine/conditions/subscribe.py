"""``subscribe``: fulfilled by an event of a given name, addressed to the run or carrying the
correlation value rendered at state entry, whose payload satisfies ``match``.

Events are kept by the store, so one that arrived before the run reached this state is found
here (buffering); the event's arrival time, or the start of the race if later, is the moment
of fulfilment. Each event is consumed by a run at most once.
"""

from __future__ import annotations

from typing import Any

from engine.conditions import CheckContext, Fulfilment, register
from engine.language.model import SubscribeCondition
from engine.runs import Subscription


class Subscribe:
    kind = "subscribe"

    def arm(self, condition: SubscribeCondition, ctx: CheckContext) -> dict[str, Any]:
        correlation = None
        if condition.correlate is not None:
            rendered = ctx.render(condition.correlate)
            correlation = None if rendered is None else str(rendered)
        return {"event": condition.event, "correlation": correlation}

    def check(
        self, condition: SubscribeCondition, armed: dict[str, Any], ctx: CheckContext
    ) -> Fulfilment | None:
        for event in ctx.events(self.subscription(condition, armed)):
            if condition.match and not ctx.evaluate(condition.match, event=event.payload):
                continue
            save = ((condition.save_as, event.payload),) if condition.save_as else ()
            return Fulfilment(
                at=max(event.received_at, ctx.armed_at),
                detail={"event": event.name, "event_id": event.id, "event_key": event.key},
                save=save,
                consumed_event=event.id,
            )
        return None

    def wake_at(self, condition: SubscribeCondition, armed: dict[str, Any]) -> None:
        return None

    def subscription(self, condition: SubscribeCondition, armed: dict[str, Any]) -> Subscription:
        return Subscription(event=armed["event"], correlation=armed["correlation"])


register(Subscribe())
