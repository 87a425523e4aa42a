"""One step of one run: the loop, moving between states, instructions and the race of
conditions. See ``engine.runner`` for what a step guarantees."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine import conditions, expressions, instructions, limits, secrets
from engine.backoff import retry_delay, should_retry
from engine.budgets import TemplateLimits
from engine.clock import Clock, to_iso
from engine.conditions import CheckContext, Fulfilment
from engine.cursor import LastError, Phase, RunCursor
from engine.datapaths import set_path
from engine.errors import EngineError, ExpressionError, InstructionError, RunErrorCode
from engine.language.model import Instruction, Outcome, State, Transition
from engine.runner.batch import Batch
from engine.runner.io_race import IORace
from engine.runner.outside import REAL, Outside
from engine.runner.settings import EngineSettings
from engine.runs import (
    AttemptRecord,
    PollOutcome,
    PollRecord,
    RunSnapshot,
    RunStatus,
    StepOutcome,
    Subscription,
    TransitionRecord,
    Trigger,
)
from engine.store import RunStore


@dataclass(frozen=True, slots=True)
class Park:
    """The step can do nothing more now; look at the run again at ``wake_at``."""

    wake_at: datetime | None


class Step:
    """The work of one ``advance`` call; holds the records not yet committed."""

    def __init__(
        self, run: RunSnapshot, *, store: RunStore, clock: Clock, pool: ThreadPoolExecutor,
        settings: EngineSettings, outside: Outside = REAL,
    ):
        self.store, self.clock, self.pool, self.settings = store, clock, pool, settings
        self.outside = outside
        self.run = run
        self.task = run.task
        self.secrets = secrets.Secrets(self.settings.secrets_prefix, environ=outside.environ)
        self.batch = Batch(log=outside.log_runs)
        self.io_race = IORace(pool=pool, clock=clock)
        self.transitions = 0
        self.started = time.monotonic()
        # The size of run.data as last measured (None: not yet in this step; see _check_data).
        self._data_bytes: int | None = None

    # ------------------------------------------------------------------ the loop

    def go(self) -> StepOutcome:
        run = self.run
        while True:
            if run.status.finished:
                outcome = StepOutcome(None, True, self.transitions)
                break
            park = self._tick()
            if park is not None:
                outcome = StepOutcome(park.wake_at, False, self.transitions)
                break
        outcome.released = self.batch.flush(
            self.store, self.run, release=True, wake_at=outcome.wake_at)
        return outcome

    def _tick(self) -> Park | None:
        """One move of the loop; a ``Park`` when the step must stop here."""
        run, now = self.run, self.clock.now()
        if run.cancel_requested:
            self._end(RunStatus.CANCELLED, Trigger.CANCEL, {"code": RunErrorCode.CANCELLED,
                      "message": "cancelled on request"})
            return None
        if run.state is None:
            self._enter(self.task.start_state, Trigger.START)
            return None
        if run.deadline_at is not None and now >= run.deadline_at:
            self._end(RunStatus.TIMED_OUT, Trigger.DEADLINE, {
                "code": RunErrorCode.DEADLINE, "message": f"the run's deadline "
                f"{to_iso(run.deadline_at)} passed in state '{run.state}'"})
            return None
        if self._budget_spent():
            return Park(now)  # yield the worker; the caller reschedules at once
        state = self.task.state(run.state)
        if run.cursor.phase is Phase.INSTRUCTIONS:
            return self._instructions(state)
        return self._race(state)

    def _budget_spent(self) -> bool:
        return (
            self.transitions >= self.settings.step_max_transitions
            or time.monotonic() - self.started >= self.settings.step_max_seconds
        )

    # ------------------------------------------------------------------ moving

    def _enter(
        self,
        target: str,
        trigger: Trigger,
        *,
        transition: Transition | None = None,
        index: int | None = None,
        detail: dict[str, Any] | None = None,
        polls: Sequence[PollRecord] = (),
        consumed_event: str | None = None,
    ) -> None:
        """Leave the current state for ``target`` and commit that transition."""
        run, now = self.run, self.clock.now()
        source, subscriptions = run.state, self._subscriptions_to_clear()
        spent = self._account_time_in_state(now)
        state = self.task.state(target)
        run.state, run.entry, run.state_entered_at = target, run.entry + 1, now
        run.cursor = self._fresh_cursor(state, now)
        run.status = RunStatus.RUNNING
        if state.is_final:
            run.status = (
                RunStatus.SUCCEEDED if state.outcome == Outcome.SUCCEEDED else RunStatus.FAILED
            )
            self._finish_metrics(now)
            if run.status is RunStatus.FAILED:
                run.error = {"code": RunErrorCode.FAILED_STATE, "state": target,
                             "message": f"the run reached final state '{target}' (failed)"}
        record = TransitionRecord(
            from_state=source, to_state=target, trigger=trigger, at=now,
            condition_kind=transition.condition_kind if transition else "",
            transition_index=index, time_in_state=spent,
            detail=self._redact(detail or {}), entry=run.entry,
        )
        self._queue(record, polls, subscriptions)
        if consumed_event is not None:
            self.batch.consumed.append(consumed_event)

    def _end(
        self,
        status: RunStatus,
        trigger: Trigger,
        error: dict[str, Any] | None,
        polls: Sequence[PollRecord] = (),
    ) -> None:
        """Finish the run outside any final state (failure, time-out, cancel)."""
        run, now = self.run, self.clock.now()
        subscriptions = self._subscriptions_to_clear()
        spent = self._account_time_in_state(now)
        run.status, run.cursor = status, RunCursor.empty()
        run.error = self._redact(dict(error, state=run.state)) if error else None
        self._finish_metrics(now)
        record = TransitionRecord(
            from_state=run.state, to_state=None, trigger=trigger, at=now,
            time_in_state=spent, detail=run.error or {}, entry=run.entry,
        )
        self._queue(record, polls, subscriptions)

    def _subscriptions_to_clear(self) -> tuple[()] | None:
        """Leaving a state drops its subscriptions; most states have none to drop."""
        return () if self.run.cursor.subscribed else None

    def _fresh_cursor(self, state: State, now: datetime) -> RunCursor:
        if state.is_final:
            return RunCursor.empty()
        timeout = self.task.timeout_for(state)
        return RunCursor.entering(now + timeout if timeout is not None else None)

    def _account_time_in_state(self, now: datetime) -> float:
        run = self.run
        if run.state is None or run.state_entered_at is None:
            return 0.0
        spent = max((now - run.state_entered_at).total_seconds(), 0.0)
        per_state = run.metrics.setdefault("time_in_state", {})
        per_state[run.state] = round(per_state.get(run.state, 0.0) + spent, 6)
        run.metrics["transitions"] = run.metrics.get("transitions", 0) + 1
        self.transitions += 1
        return spent

    def _finish_metrics(self, now: datetime) -> None:
        run = self.run
        run.finished_at = now
        run.metrics["duration"] = round((now - run.created_at).total_seconds(), 6)

    def _queue(
        self, record: TransitionRecord, polls: Sequence[PollRecord],
        subscriptions: Sequence[Subscription] | None,
    ) -> None:
        self.batch.transitions.append(record)
        self.batch.add_polls(polls)
        if subscriptions is not None:
            self.batch.subscriptions = subscriptions

    def _flush(self) -> None:
        """Commit what the step has queued: before anything outside the database happens,
        and when the step ends."""
        if self.batch.transitions or self.batch.attempts or self.batch.dirty or (
                self.batch.subscriptions is not None):
            self.batch.flush(self.store, self.run)

    # ------------------------------------------------------------------ instructions

    def _instructions(self, state: State) -> Park | None:
        cursor = self.run.cursor
        while cursor.index < len(state.instructions):
            now = self.clock.now()
            if self._timed_out(now):
                self._timeout(state, polls=())
                return None
            retry_at = cursor.retry_at
            if retry_at is not None and retry_at > now:
                return Park(self._earliest(retry_at))
            if self._budget_spent():
                return Park(now)  # the step's time went on earlier instructions: yield
            instruction = state.instructions[cursor.index]
            if not self._attempt(state, instruction):
                return self._after_failure(state, instruction)
        cursor.phase, cursor.index = Phase.CONDITIONS, len(state.instructions)
        return None

    def _attempt(self, state: State, instruction: Instruction) -> bool:
        """Run one attempt of ``instruction``; record it; True when it succeeded."""
        run, cursor = self.run, self.run.cursor
        attempt = cursor.attempt = cursor.attempt + 1
        self.batch.dirty = True
        if instructions.has_side_effects(instruction.kind):
            # The way here (and the previous instruction's result) is durable before the
            # far end hears of it; the attempt count too, so a crash cannot reset it.
            self._flush()
            self.store.renew_lease(run)
        started, t0 = self.clock.now(), time.monotonic()
        try:
            result = self._execute(instruction, attempt)
            data = self._with_result(instruction, result)
        except (InstructionError, ExpressionError) as exc:
            self._record_attempt(state, instruction, attempt, started, t0, exc)
            cursor.last_error = LastError(self._redact(str(exc)),
                                          getattr(exc, "error_class", "error"))
            return False
        self._record_attempt(state, instruction, attempt, started, t0, None)
        self.run.data = data
        cursor.index, cursor.attempt, cursor.retry_at, cursor.last_error = (
            cursor.index + 1, 0, None, None)
        return True  # the result is committed before the next side effect, or at the end

    def _execute(self, instruction: Instruction, attempt: int) -> Any:
        """One attempt's call. One with side effects is made with everything before it
        committed (``_attempt``), so the store may lend its database connection meanwhile."""
        ctx = self._exec_context(instruction, attempt)
        if not instructions.has_side_effects(instruction.kind):
            return self.outside.execute(instruction, ctx)
        with self.store.outside():
            return self.outside.execute(instruction, ctx)

    def _after_failure(self, state: State, instruction: Instruction) -> Park | None:
        cursor = self.run.cursor
        attempt, error = cursor.attempt, cursor.last_error
        assert error is not None  # set by the failed attempt that led here
        if should_retry(instruction.retry, attempt, error.error_class):
            delay = retry_delay(instruction.retry, attempt)
            if delay <= self.settings.inline_retry_max_seconds:
                self.clock.sleep(delay)
                return None
            retry_at = self.clock.now() + timedelta(seconds=delay)
            cursor.retry_at = retry_at
            self.batch.dirty = True
            return Park(self._earliest(retry_at))
        detail = {"instruction": instruction.name, "attempts": attempt, **error.to_json()}
        if instruction.on_error:
            self._enter(instruction.on_error, Trigger.ERROR, detail=detail)
        else:
            self._end(RunStatus.FAILED, Trigger.ERROR, {
                "code": RunErrorCode.INSTRUCTION_FAILED, "message": f"instruction "
                f"'{instruction.name}' in state '{state.name}' failed after {attempt} "
                f"attempt(s): {error.message}",
                "instruction": instruction.name})
        return None

    def _exec_context(self, instruction: Instruction, attempt: int) -> instructions.ExecContext:
        run = self.run
        return instructions.ExecContext(
            render=self._render_sent,
            timeout=instruction.timeout.total_seconds(),
            idempotency_key=instructions.idempotency_key(run.id, run.entry, instruction.name),
            attempt=attempt, max_result_bytes=self.settings.max_result_bytes,
            descriptor_dir=self.settings.descriptor_dir,
        )

    def _record_attempt(
        self, state: State, instruction: Instruction, attempt: int,
        started: datetime, t0: float, error: EngineError | None,
    ) -> None:
        self.run.metrics["attempts"] = self.run.metrics.get("attempts", 0) + 1
        if error is not None:
            self.run.metrics["failures"] = self.run.metrics.get("failures", 0) + 1
        self.batch.attempts.append(AttemptRecord(
            state=state.name, entry=self.run.entry, instruction=instruction.name,
            kind=instruction.kind, attempt=attempt, ok=error is None, started_at=started,
            duration=time.monotonic() - t0,
            error=self._redact(str(error)) if error else "",
            error_class=getattr(error, "error_class", "error") if error else "",
        ))

    def _with_result(self, instruction: Instruction, result: Any) -> dict[str, Any]:
        """The run's data with ``result`` saved (copy-on-write: the run is not touched).

        Raises:
            InstructionError: the result, or the data with it, is over its size limit
                (``MAX_RESULT_BYTES``, ``MAX_DATA_BYTES``), or a path to save it at runs
                through a value that is not a mapping: the attempt fails, and the
                instruction's retry and ``on_error`` decide what follows.
        """
        name = instruction.name
        try:
            size = limits.check_size(result, what=f"the result of instruction '{name}'",
                                     limit=self.settings.max_result_bytes,
                                     setting="MAX_RESULT_BYTES")
            saves = self._saves(instruction, result)
            if not saves:
                return self.run.data
            data = self.run.data
            for path, value in saves:
                data = set_path(data, path, self._redact(value))
            self._check_data(data, grown=size + sum(limits.path_bytes(p) for p, _ in saves))
        except limits.SizeLimitExceeded as exc:
            raise InstructionError(str(exc)) from exc
        except (TypeError, ValueError) as exc:  # set_path: into a list or a number
            raise InstructionError(f"cannot save the result of instruction '{name}': {exc}"
                                   ) from exc
        self.batch.dirty = True
        return data

    @staticmethod
    def _saved_bytes(saves: Sequence[tuple[str, Any]]) -> int | None:
        """What ``saves`` can add to the data's JSON; None when too deep to measure."""
        try:
            return sum(limits.json_size(value) + limits.path_bytes(path)
                       for path, value in saves)
        except RecursionError:
            return None

    @staticmethod
    def _saves(instruction: Instruction, result: Any) -> list[tuple[str, Any]]:
        if instructions.assigns_paths(instruction.kind):
            return list(result.items())
        return [(instruction.save_as, result)] if instruction.save_as else []

    def _check_data(self, data: dict[str, Any], grown: int | None = None) -> None:
        """Raises ``SizeLimitExceeded`` when ``data`` is over ``MAX_DATA_BYTES``.

        ``grown`` bounds how many bytes the last change can have added (the saved values'
        size plus their keys and punctuation): while the size last measured plus that stays
        under the limit, the data is not encoded again — encoding 1 MB of data costs about
        as much as committing it (60-70 ms here). Redaction can lengthen a value, so with
        secrets in use every change is measured.
        """
        limit = self.settings.max_data_bytes
        if limit <= 0:
            return
        known = self._data_bytes
        if grown is not None and known is not None and not self.secrets.used_values:
            if known + grown <= limit:
                self._data_bytes = known + grown
                return
        self._data_bytes = limits.check_size(
            data, what=f"run data (in state '{self.run.state}')", limit=limit,
            setting="MAX_DATA_BYTES")

    # ------------------------------------------------------------------ conditions

    def _race(self, state: State) -> Park | None:
        if self.run.cursor.armed is None:
            self._arm(state)
            if self.run.status.finished:
                return None
        now = self.clock.now()
        winner = self._first_fulfilled(state, now)
        if self.run.status.finished:
            return None  # a predicate failed (undefined name, over budget): the run ended
        if winner is not None:
            self._take(state, *winner)
            return None
        if self._timed_out(now):
            self._timeout(state, polls=self._io_records(state, PollOutcome.CANCELLED))
            return None
        due = self.io_race.due(state, self._armed(), now)
        if due:
            self._race_io(state, due)
            return None
        self.batch.add_polls(self._io_records(state, PollOutcome.POLLING))
        return Park(self._earliest(*self._condition_wakes(state)))

    def _arm(self, state: State) -> None:
        """Arm every outgoing condition; commit the subscriptions before any event check,
        so an event sent after this commit always finds them (and wakes the run)."""
        self.run.cursor.armed_at = self.clock.now()
        ctx, armed = self._check_context(), {}
        try:
            for index, transition in enumerate(state.transitions):
                plugin = conditions.plugin_for(transition.condition_kind)
                armed[index] = plugin.arm(transition.condition, ctx)
        except ExpressionError as exc:
            self._condition_failed(state, exc, "arming")
            return
        self.run.cursor.armed = armed
        self.batch.dirty = True
        subscriptions = self._subscriptions(state)
        if subscriptions:
            self.run.cursor.subscribed = True
            self.batch.subscriptions = subscriptions
            self._flush()

    def _subscriptions(self, state: State) -> list[Subscription]:
        armed, found = self._armed(), []
        for index, transition in enumerate(state.transitions):
            plugin = conditions.plugin_for(transition.condition_kind)
            subscription = plugin.subscription(transition.condition, armed[index])
            if subscription is not None:
                found.append(subscription)
        return found

    def _first_fulfilled(
        self, state: State, now: datetime
    ) -> tuple[int, Transition, Fulfilment] | None:
        """The condition fulfilled earliest (ties: the earlier-declared transition) among
        those fulfilled no later than the state timeout."""
        ctx, armed, best = self._check_context(now), self._armed(), None
        timeout_at = self.run.cursor.timeout_at
        for index, transition in enumerate(state.transitions):
            plugin = conditions.plugin_for(transition.condition_kind)
            try:
                found = plugin.check(transition.condition, armed[index], ctx)
            except ExpressionError as exc:
                self._condition_failed(state, exc, "checking")
                return None
            if found is None or (timeout_at is not None and found.at > timeout_at):
                continue
            if best is None or found.at < best[2].at:
                best = (index, transition, found)
        return best

    def _take(self, state: State, index: int, transition: Transition, found: Fulfilment) -> None:
        data = self.run.data
        for path, value in found.save:
            data = set_path(data, path, self._redact(value))
        if found.save:
            try:
                self._check_data(data, grown=self._saved_bytes(found.save))
            except limits.SizeLimitExceeded as exc:
                self._end(RunStatus.FAILED, Trigger.ERROR, {
                    "code": exc.code, "message": f"taking the transition to "
                    f"'{transition.target}' failed: {exc}"},
                    polls=self._io_records(state, PollOutcome.CANCELLED))
                return
        self.run.data = data
        self._enter(
            transition.target, Trigger.CONDITION, transition=transition, index=index,
            detail=found.detail, polls=self._io_records(state, PollOutcome.CANCELLED, winner=index),
            consumed_event=found.consumed_event,
        )

    def _timed_out(self, now: datetime) -> bool:
        timeout_at = self.run.cursor.timeout_at
        return timeout_at is not None and now >= timeout_at

    def _timeout(self, state: State, polls: Sequence[PollRecord]) -> None:
        timeout = self.task.timeout_for(state)
        detail = {"code": RunErrorCode.STATE_TIMEOUT,
                  "timeout_at": to_iso(self.run.cursor.timeout_at),
                  "message": f"no transition out of state '{state.name}' within {timeout}"}
        if state.on_timeout:
            self._enter(state.on_timeout, Trigger.TIMEOUT, detail=detail, polls=polls)
        else:
            self._end(RunStatus.TIMED_OUT, Trigger.TIMEOUT, detail, polls=polls)

    def _condition_failed(self, state: State, exc: EngineError, doing: str) -> None:
        self._end(RunStatus.FAILED, Trigger.ERROR, {
            "code": getattr(exc, "code", RunErrorCode.CONDITION_ERROR),
            "message": f"{doing} the conditions of state '{state.name}' failed: {exc}"})

    def _condition_wakes(self, state: State) -> list[datetime | None]:
        armed = self._armed()
        wakes: list[datetime | None] = [self.run.cursor.timeout_at]
        for index, transition in enumerate(state.transitions):
            plugin = conditions.plugin_for(transition.condition_kind)
            wakes.append(plugin.wake_at(transition.condition, armed[index]))
        return wakes

    def _earliest(self, *moments: datetime | None) -> datetime | None:
        candidates = [m for m in (*moments, self.run.deadline_at) if m is not None]
        return min(candidates) if candidates else None

    def _armed(self) -> dict[int, dict[str, Any]]:
        """The armed conditions (only called once the race has begun)."""
        armed = self.run.cursor.armed
        assert armed is not None
        return armed

    # ------------------------------------------------------------------ I/O conditions

    def _race_io(self, state: State, due: list[int]) -> None:
        """Race the due attempts of the state's I/O conditions (``IORace``), then act on the
        result: take the winner, follow an exhausted condition's ``on_error``, or end the
        run when a check failed."""
        self._flush()  # attempts reach the outside world: what led here is committed first
        self.store.renew_lease(self.run)
        result = self.io_race.race(
            state, self._armed(), due, execute_for=self._io_executor,
            check_context=self._check_context, redact=self._redact,
            until=self._earliest(self.run.cursor.timeout_at))
        if result.error is not None:
            self._condition_failed(state, result.error, "checking")
        elif result.winner is not None and result.fulfilment is not None:
            self._take(state, result.winner, state.transitions[result.winner],
                       result.fulfilment)
        elif result.exhausted is not None:
            self._io_exhausted(state, result.exhausted)

    def _io_exhausted(self, state: State, index: int) -> None:
        detail, on_error = self.io_race.exhaustion(state, self._armed(), index)
        polls = self._io_records(state, PollOutcome.CANCELLED, winner=index,
                                 winner_outcome=PollOutcome.EXHAUSTED)
        if on_error:
            self._enter(on_error, Trigger.ERROR, detail=detail, polls=polls)
        else:
            self._end(RunStatus.FAILED, Trigger.ERROR, detail, polls=polls)

    def _io_executor(
        self, index: int, instruction: Instruction, attempt: int
    ) -> Callable[[], Any]:
        """What attempt ``attempt`` of the I/O condition at ``index`` runs: its instruction,
        with an idempotency key of its own (the result limit too: an attempt reads no larger
        a body than an instruction)."""
        ctx = self._exec_context(instruction, attempt)
        # The suffix is the documented key format of every attempt (docs/engine.md), kept
        # so far ends that deduplicate on it see the keys they always saw.
        ctx = replace(ctx, idempotency_key=f"{ctx.idempotency_key}:poll{index}:{attempt}")
        execute = self.outside.execute
        return lambda: execute(instruction, ctx)

    def _io_records(
        self, state: State, others: PollOutcome, winner: int | None = None,
        winner_outcome: PollOutcome = PollOutcome.FULFILLED,
    ) -> list[PollRecord]:
        return self.io_race.records(state, self.run.cursor.armed, self.run.entry, others,
                                    winner=winner, winner_outcome=winner_outcome)


    # ------------------------------------------------------------------ context

    def _context(self, **extra: Any) -> dict[str, Any]:
        run = self.run
        return expressions.build_context(
            input=run.input, data=run.data, secrets=self.secrets,
            run={"id": run.id, "task": self.task.name, "version": self.task.version,
                 "state": run.state, "entry": run.entry},
            now=self.clock.now(), **extra,
        )

    def _render_sent(self, value: Any) -> Any:
        """Render an instruction's option, noting what its secrets turned into (redacted from
        whatever a far end echoes back)."""
        rendered = expressions.render(value, self._context(), limits=self._template_limits())
        self.secrets.note_rendered(value, rendered)
        return rendered

    def _check_context(self, now: datetime | None = None) -> CheckContext:
        run, now = self.run, now or self.clock.now()
        entered = run.state_entered_at or now
        return CheckContext(
            run=run, now=now, entered_at=entered,
            armed_at=run.cursor.armed_at or entered,
            render=lambda value, **extra: expressions.render(
                value, self._context(**extra), limits=self._template_limits()),
            evaluate=lambda text, **extra: expressions.evaluate(
                text, self._context(**extra), limits=self._template_limits()),
            events=lambda sub: self.store.events_for(run, sub),
        )

    def _template_limits(self) -> TemplateLimits:
        """A template's budgets; its deadline is never past the end of the step's time."""
        settings = self.settings
        limits = TemplateLimits(
            max_seconds=settings.template_max_seconds,
            max_operations=settings.template_max_operations,
            max_output=settings.template_max_output)
        left = settings.step_max_seconds - (time.monotonic() - self.started)
        if left < limits.max_seconds:
            limits = replace(limits, max_seconds=max(left, 0.0), deadline_setting=(
                "STEP_MAX_SECONDS"), deadline_limit=settings.step_max_seconds)
        return limits

    def _redact(self, value: Any) -> Any:
        """``value`` without any form of a secret: everything the step stores passes here."""
        return secrets.redact(value, self.secrets.to_redact())
