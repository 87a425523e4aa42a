"""Racing poll conditions: due attempts run concurrently in the worker's bounded thread pool;
the first fulfilled wins and the others are abandoned. Mixed into ``Step``."""

from __future__ import annotations

import dataclasses
from concurrent.futures import FIRST_COMPLETED, Future, wait
from datetime import datetime
from typing import Any

from engine import conditions, instructions
from engine.clock import from_iso
from engine.conditions.poll import Poll, PollAttempt
from engine.errors import ExpressionError
from engine.language.model import PollCondition, State
from engine.runs import PollRecord, RunStatus, Trigger


class PollRacing:
    """The poll half of a step (see ``engine.runner.step.Step`` for the attributes used)."""

    def _due_polls(self, state: State, now: datetime) -> list[int]:
        armed, poll = self.run.cursor["armed"], conditions.plugin_for("poll")
        assert isinstance(poll, Poll)
        return [
            index for index, transition in enumerate(state.transitions)
            if transition.condition_kind == "poll" and poll.due(armed[str(index)], now)
        ]

    def _race_polls(self, state: State, due: list[int]) -> None:
        """Run the due poll attempts concurrently; the first fulfilled wins and the others
        are abandoned (their results are discarded). Bounded by the state timeout."""
        self._flush()  # polls reach the outside world: what led here is committed first
        self.store.renew_lease(self.run)
        poll = conditions.plugin_for("poll")
        assert isinstance(poll, Poll)
        futures: dict[Future[PollAttempt], int] = {
            self.pool.submit(poll.attempt, self._poll_executor(state, i), self.clock.now):
            i for i in due
        }
        exhausted: list[int] = []
        while futures:
            done, _ = wait(futures, timeout=self._seconds_left(), return_when=FIRST_COMPLETED)
            if not done:
                break  # the state timed out with attempts in flight: abandon them
            for future in sorted(done, key=futures.__getitem__):
                index = futures.pop(future)
                settled = self._settle(state, poll, index, future.result())
                if settled is not None and settled.fulfilment is not None:
                    self._take(state, index, state.transitions[index], settled.fulfilment)
                    return
                if settled is not None and settled.exhausted:
                    exhausted.append(index)
        if exhausted and not self.run.status.finished:
            self._poll_exhausted(state, exhausted[0])

    def _settle(self, state: State, poll: Poll, index: int, attempt: PollAttempt) -> Any:
        armed = self.run.cursor["armed"]
        try:
            settled = poll.settle(state.transitions[index].condition, armed[str(index)],
                                  attempt, self._check_context())
        except ExpressionError as exc:
            self._condition_failed(state, exc, "checking")
            return None
        armed[str(index)] = self._redact(settled.armed)
        return settled

    def _poll_exhausted(self, state: State, index: int) -> None:
        transition = state.transitions[index]
        condition = transition.condition
        assert isinstance(condition, PollCondition)
        armed = self.run.cursor["armed"][str(index)]
        detail = {"code": "poll_exhausted", "transition": index, "attempts": armed["attempts"],
                  "last_error": armed["last_error"],
                  "message": f"poll for '{transition.target}' in state '{state.name}' gave up "
                  f"after {armed['attempts']} attempt(s)"}
        polls = self._poll_records(state, "cancelled", winner=index, winner_outcome="exhausted")
        if condition.on_error:
            self._enter(condition.on_error, Trigger.ERROR, detail=detail, polls=polls)
        else:
            self._end(RunStatus.FAILED, Trigger.ERROR, detail, polls=polls)

    def _poll_executor(self, state: State, index: int) -> Any:
        condition = state.transitions[index].condition
        assert isinstance(condition, PollCondition)
        attempt = self.run.cursor["armed"][str(index)]["attempts"] + 1
        ctx = self._exec_context(condition.instruction, attempt)
        ctx = dataclasses.replace(  # the result limit too: a poll reads no larger a body
            ctx, idempotency_key=f"{ctx.idempotency_key}:poll{index}:{attempt}")
        return lambda: instructions.execute(condition.instruction, ctx)

    def _seconds_left(self) -> float | None:
        limit = self._earliest(from_iso(self.run.cursor.get("timeout_at")))
        if limit is None:
            return None
        return max((limit - self.clock.now()).total_seconds(), 0.0)

    def _poll_records(
        self, state: State, others: str, winner: int | None = None,
        winner_outcome: str = "fulfilled",
    ) -> list[PollRecord]:
        """One aggregated record per poll of this state entry that made any attempt."""
        armed, records = self.run.cursor.get("armed", {}), []
        for index, transition in enumerate(state.transitions):
            mine = armed.get(str(index))
            if transition.condition_kind != "poll" or not mine or not mine["attempts"]:
                continue
            outcome = winner_outcome if index == winner else others
            records.append(PollRecord(
                state=state.name, entry=self.run.entry, transition_index=index,
                target=transition.target, attempts=mine["attempts"],
                first_at=from_iso(mine["first_at"]), last_at=from_iso(mine["last_at"]),
                outcome=outcome, last_result=mine["last_result"], last_error=mine["last_error"],
            ))
        return records

