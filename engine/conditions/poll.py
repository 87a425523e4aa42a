"""``poll``: run an instruction every interval until a predicate over its result holds.

Between attempts the run is parked with the next attempt time persisted, so a poll of any
length holds no worker. All attempts of one poll in one state entry are aggregated into a
single record (count, first and last time, last result or error), never a row per attempt.
An attempt that errors counts as an attempt; exhaustion (``max_attempts`` or
``max_duration``) is reported to the runner, which follows ``on_error`` or fails the run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from engine.backoff import poll_interval
from engine.clock import from_iso, to_iso
from engine.conditions import CheckContext, Fulfilment, register
from engine.conditions.io import Attempt, Settled, Summary
from engine.errors import EngineError
from engine.language.model import Instruction, PollCondition


class Poll:
    kind = "poll"
    io = True  # fulfilled only by attempts that run an instruction: the runner races them

    def arm(self, condition: PollCondition, ctx: CheckContext) -> dict[str, Any]:
        return {
            "attempts": 0,
            "first_at": None,
            "last_at": None,
            "next_at": to_iso(ctx.entered_at),
            "last_result": None,
            "last_error": "",
        }

    def check(self, condition: PollCondition, armed: dict[str, Any], ctx: CheckContext) -> None:
        return None  # fulfilled only by an attempt: see ``attempt`` and ``settle``

    def wake_at(self, condition: PollCondition, armed: dict[str, Any]) -> datetime | None:
        return from_iso(armed["next_at"])

    def subscription(self, condition: PollCondition, armed: dict[str, Any]) -> None:
        return None

    def instruction(self, condition: PollCondition) -> Instruction:
        return condition.instruction

    def on_error(self, condition: PollCondition) -> str | None:
        return condition.on_error

    def summary(self, armed: dict[str, Any]) -> Summary:
        return Summary(
            attempts=armed["attempts"], first_at=from_iso(armed["first_at"]),
            last_at=from_iso(armed["last_at"]), last_result=armed["last_result"],
            last_error=armed["last_error"])

    def due(self, armed: dict[str, Any], now: datetime) -> bool:
        next_at = from_iso(armed["next_at"])
        return next_at is not None and next_at <= now

    def attempt(
        self, execute: Callable[[], Any], now: Callable[[], datetime]
    ) -> Attempt:
        """Run one attempt (in a pool thread). ``execute`` runs the poll's instruction."""
        started = now()
        try:
            result = execute()
        except EngineError as exc:
            return Attempt(started, now(), error=str(exc), ok=False)
        return Attempt(started, now(), result=result)

    def settle(
        self,
        condition: PollCondition,
        armed: dict[str, Any],
        attempt: Attempt,
        ctx: CheckContext,
    ) -> Settled:
        """Fold one attempt into the aggregate and decide: fulfilled, exhausted or go on."""
        count = armed["attempts"] + 1
        first = armed["first_at"] or to_iso(attempt.started_at)
        new = dict(armed, attempts=count, first_at=first, last_at=to_iso(attempt.finished_at))
        new["last_result"] = attempt.result if attempt.ok else None
        new["last_error"] = attempt.error
        if attempt.ok and ctx.evaluate(condition.until, result=attempt.result):
            new["next_at"] = None
            save = ((condition.instruction.save_as, attempt.result),)
            return Settled(
                armed=new,
                fulfilment=Fulfilment(
                    at=attempt.finished_at,
                    detail={"attempts": count},
                    save=save if condition.instruction.save_as else (),
                ),
            )
        if self._exhausted(condition, new, attempt.finished_at):
            new["next_at"] = None
            return Settled(armed=new, exhausted=True)
        delay = poll_interval(condition.every, condition.backoff, count)
        new["next_at"] = to_iso(attempt.finished_at + timedelta(seconds=delay))
        return Settled(armed=new)

    @staticmethod
    def _exhausted(condition: PollCondition, armed: dict[str, Any], now: datetime) -> bool:
        if condition.max_attempts is not None and armed["attempts"] >= condition.max_attempts:
            return True
        first = from_iso(armed["first_at"])
        return (
            condition.max_duration is not None
            and first is not None
            and now - first >= condition.max_duration
        )


register(Poll())
