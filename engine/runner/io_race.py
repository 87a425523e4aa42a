"""Racing the attempts of I/O conditions (``engine.conditions.io``): the due attempts run
concurrently in the worker's bounded thread pool; the first fulfilled wins and the others
are abandoned.

``IORace`` is a collaborator of the step, not part of it: it is handed what it works on (the
state, the armed conditions, how to run an instruction, how to check, how to redact, until
when it may wait) and answers with a ``RaceResult``; the step decides what follows. It
knows no condition by name: any plugin that declares ``io`` is raced.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.conditions import CheckContext, Fulfilment
from engine.conditions.io import Attempt, IOCondition, io_condition
from engine.errors import ExpressionError, RunErrorCode
from engine.language.model import Instruction, State
from engine.runs import PollOutcome, PollRecord

# Builds what one attempt runs: (transition index, instruction, attempt number) -> call.
ExecuteFor = Callable[[int, Instruction, int], Callable[[], Any]]


@dataclass(frozen=True, slots=True)
class RaceResult:
    """How a race ended: a winner, an exhausted condition, a failed check, or nothing yet
    (every attempt settled without a decision, or the wait ran out)."""

    winner: int | None = None
    fulfilment: Fulfilment | None = None
    exhausted: int | None = None
    error: ExpressionError | None = None


class IORace:
    """Races the I/O conditions of the current state, in ``pool``."""

    def __init__(self, *, pool: ThreadPoolExecutor, clock: Clock):
        self.pool, self.clock = pool, clock

    @staticmethod
    def io_plugins(state: State) -> dict[int, IOCondition]:
        """The state's I/O conditions, by transition index."""
        found = {}
        for index, transition in enumerate(state.transitions):
            plugin = io_condition(transition.condition_kind)
            if plugin is not None:
                found[index] = plugin
        return found

    def due(self, state: State, armed: dict[int, dict[str, Any]], now: datetime) -> list[int]:
        """The transitions whose I/O condition should make an attempt now."""
        return [i for i, plugin in self.io_plugins(state).items() if plugin.due(armed[i], now)]

    def race(
        self, state: State, armed: dict[int, dict[str, Any]], due: list[int], *,
        execute_for: ExecuteFor, check_context: Callable[[], CheckContext],
        redact: Callable[[Any], Any], until: datetime | None,
    ) -> RaceResult:
        """Run the due attempts concurrently and settle them as they finish, in index order
        among those finishing together; ``armed`` is updated in place (redacted). Waits no
        later than ``until`` (the state timeout or the run's deadline): attempts still in
        flight then are abandoned and their results discarded."""
        plugins = self.io_plugins(state)
        futures: dict[Future[Attempt], int] = {}
        for i in due:
            condition = state.transitions[i].condition
            execute = execute_for(i, plugins[i].instruction(condition),
                                  plugins[i].summary(armed[i]).attempts + 1)
            futures[self.pool.submit(plugins[i].attempt, execute, self.clock.now)] = i
        exhausted: int | None = None
        while futures:
            done, _ = wait(futures, timeout=self._seconds_left(until),
                           return_when=FIRST_COMPLETED)
            if not done:
                break  # the state timed out with attempts in flight: abandon them
            for future in sorted(done, key=futures.__getitem__):
                index = futures.pop(future)
                try:
                    settled = plugins[index].settle(state.transitions[index].condition,
                                                    armed[index], future.result(),
                                                    check_context())
                except ExpressionError as exc:
                    return RaceResult(error=exc)
                armed[index] = redact(settled.armed)
                if settled.fulfilment is not None:
                    return RaceResult(winner=index, fulfilment=settled.fulfilment)
                if settled.exhausted and exhausted is None:
                    exhausted = index
        return RaceResult(exhausted=exhausted)

    def _seconds_left(self, until: datetime | None) -> float | None:
        if until is None:
            return None
        return max((until - self.clock.now()).total_seconds(), 0.0)

    def exhaustion(
        self, state: State, armed: dict[int, dict[str, Any]], index: int
    ) -> tuple[dict[str, Any], str | None]:
        """The error detail of the exhausted condition at ``index``, and the state its
        ``on_error`` names (None: the run fails)."""
        transition = state.transitions[index]
        plugin = self.io_plugins(state)[index]
        summary = plugin.summary(armed[index])
        detail = {"code": RunErrorCode.POLL_EXHAUSTED, "transition": index,
                  "attempts": summary.attempts, "last_error": summary.last_error,
                  "message": f"poll for '{transition.target}' in state '{state.name}' gave up "
                  f"after {summary.attempts} attempt(s)"}
        return detail, plugin.on_error(transition.condition)

    def records(
        self, state: State, armed: dict[int, dict[str, Any]] | None, entry: int,
        others: PollOutcome, winner: int | None = None,
        winner_outcome: PollOutcome = PollOutcome.FULFILLED,
    ) -> list[PollRecord]:
        """One aggregated record per I/O condition of this state entry that made any
        attempt: ``winner_outcome`` for ``winner``, ``others`` for the rest."""
        records = []
        for index, plugin in self.io_plugins(state).items():
            mine = (armed or {}).get(index)
            summary = plugin.summary(mine) if mine else None
            if summary is None or not summary.attempts:
                continue
            records.append(PollRecord(
                state=state.name, entry=entry, transition_index=index,
                target=state.transitions[index].target, attempts=summary.attempts,
                first_at=summary.first_at, last_at=summary.last_at,
                outcome=winner_outcome if index == winner else others,
                last_result=summary.last_result, last_error=summary.last_error,
            ))
        return records
