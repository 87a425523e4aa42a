"""The dry run itself: the real runner driven on a virtual clock.

The driver makes what a deployment makes for a run (its snapshot, its deadline), hands the
runner an in-memory store (``SimStore``), a virtual clock (``FakeClock``) and the scripted
world (``ScriptedWorld``, through the runner's ``Outside`` seam), and plays the cluster's
part: after each step it moves the clock to the run's next wake-up (its timer, a retry, a
poll) or to the arrival of the next event the run subscribes to, whichever comes first, as
the timer and the event service wake a real run. Days of waiting take no real time.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import jsonschema

from engine.backoff import jitter_drawn_from
from engine.clock import FakeClock
from engine.cursor import RunCursor
from engine.errors import Problem
from engine.forksafe import fork_safe_dict
from engine.language.model import PollCondition, TaskDef
from engine.runner import EngineSettings, Runner
from engine.runs import RunSnapshot, RunStatus
from engine.simulation.bounds import Bound, Bounds, End
from engine.simulation.errors import ScriptError
from engine.simulation.history import Simulation
from engine.simulation.script import DEFAULT_UNTIL, Script
from engine.simulation.store import SimStore
from engine.simulation.world import ScriptedWorld

RUN_ID = "simulated-run"
DEFAULT_BOUNDS = Bounds()

# One thread races poll attempts for every simulation of a process: scripted attempts
# answer at once, and one thread settles simultaneous polls in declaration order, so the
# same script always gives the same history.
_pools: dict[str, ThreadPoolExecutor] = fork_safe_dict()


def _pool() -> ThreadPoolExecutor:
    if "pool" not in _pools:
        _pools["pool"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulation")
    return _pools["pool"]


def simulate(
    task: TaskDef, script: Script, *, input: dict[str, Any] | None = None,
    bounds: Bounds = DEFAULT_BOUNDS, settings: EngineSettings | None = None,
) -> Simulation:
    """Run ``task`` through the real runner against ``script``'s world.

    Args:
        input: the run's input; default the script's.
        settings: the engine's knobs (a deployment's); the sizes and step time are capped
            by ``bounds``.

    Raises:
        ScriptError: the input fails the task's ``input_schema``.
        Unscripted: an instruction was called that the script gives no reply for.
    """
    payload = script.input if input is None else input
    _check_names(task, script)
    _check_input(task, payload, script.source)
    # Jitter is drawn from the script's seed: the same script gives the same times.
    with jitter_drawn_from(random.Random(script.seed)):
        return _Driver(task, script, payload, bounds, settings or EngineSettings()).go()


def _check_names(task: TaskDef, script: Script) -> None:
    """Every reply under ``instructions:`` names an instruction of the task (``name`` or
    ``state/name``): a misspelt name would otherwise be silently unused."""
    known: set[str] = set()
    for state in task.states:
        names = [i.name for i in state.instructions] + [
            t.condition.instruction.name for t in state.transitions
            if isinstance(t.condition, PollCondition)]
        known.update(names)
        known.update(f"{state.name}/{name}" for name in names)
    unknown = [key for key, _ in script.instructions if key not in known]
    if unknown:
        raise ScriptError([Problem(
            script.source, 0, 0, f"instructions.{key}", f"task '{task.name}' has no "
            f"instruction '{key}'; its instructions and polls: "
            f"{', '.join(sorted(k for k in known if '/' in k)) or 'none'}") for key in unknown])


def _check_input(task: TaskDef, payload: dict[str, Any], source: str) -> None:
    if not task.input_schema:
        return
    errors = sorted(jsonschema.Draft202012Validator(task.input_schema).iter_errors(payload),
                    key=lambda e: list(e.absolute_path))
    if errors:
        raise ScriptError([Problem(source, 0, 0, "input/" + "/".join(
            str(p) for p in e.absolute_path), f"the input fails the task's input_schema: "
            f"{e.message}") for e in errors[:20]])


class _Driver:
    def __init__(self, task: TaskDef, script: Script, payload: dict[str, Any],
                 bounds: Bounds, settings: EngineSettings):
        self.task, self.script, self.bounds = task, script, bounds
        self.clock = FakeClock(script.start)
        self.store = SimStore(clock=self.clock, start=script.start, events=script.events)
        self.world = ScriptedWorld(script, settings.secrets_prefix)
        self.runner = Runner(store=self.store, clock=self.clock, pool=_pool(),
                             settings=self._settings(settings), outside=self.world.outside)
        self.run = RunSnapshot(
            id=RUN_ID, task=task, status=RunStatus.PENDING, state=None, entry=0,
            state_entered_at=None, input=payload, data={}, cursor=RunCursor.empty(),
            created_at=script.start,
            deadline_at=script.start + task.deadline if task.deadline else None)
        self.world.watch(self.run)
        self.until, self.until_is_bound = self._until()
        self.steps = 0
        self.began = time.monotonic()

    def _settings(self, settings: EngineSettings) -> EngineSettings:
        b = self.bounds

        def capped(value: int, bound: int) -> int:
            return bound if value <= 0 else min(value, bound)

        return EngineSettings(
            step_max_transitions=settings.step_max_transitions,
            step_max_seconds=min(settings.step_max_seconds, b.max_wall_seconds),
            inline_retry_max_seconds=settings.inline_retry_max_seconds,
            secrets_prefix=settings.secrets_prefix,
            template_max_seconds=settings.template_max_seconds,
            template_max_operations=settings.template_max_operations,
            template_max_output=settings.template_max_output,
            max_data_bytes=capped(settings.max_data_bytes, b.max_data_bytes),
            max_result_bytes=capped(settings.max_result_bytes, b.max_result_bytes),
            descriptor_dir=settings.descriptor_dir)

    def _until(self) -> tuple[datetime, bool]:
        """The virtual time to stop at, and whether that is the bound rather than the
        script's (or the task's) own end."""
        wanted = self.script.until
        if wanted is None:
            wanted = self.task.deadline + timedelta(seconds=1) if self.task.deadline \
                else DEFAULT_UNTIL
        if wanted > self.bounds.max_virtual:
            return self.script.start + self.bounds.max_virtual, True
        return self.script.start + wanted, False

    def go(self) -> Simulation:
        while True:
            stop = self._bound_hit()
            if stop is not None:
                return self._result(End.BOUND, stop[1], stop[0])
            outcome = self.runner.advance(self.run)
            self.steps += 1
            if outcome.finished:
                return self._result(End.FINISHED, f"the run {self.run.status}")
            if len(self.store.transitions) > self.bounds.max_transitions:
                continue  # reported by _bound_hit at the top
            ended = self._move_clock(outcome.wake_at)
            if ended is not None:
                return ended

    def _bound_hit(self) -> tuple[Bound, str] | None:
        b = self.bounds
        if len(self.store.transitions) > b.max_transitions:
            return Bound.TRANSITIONS, (f"more than {b.max_transitions} transitions: a loop "
                                       "with no exit, or a script longer than the bound")
        if self.steps >= b.max_steps:
            return Bound.STEPS, f"{b.max_steps} steps without the run ending"
        if time.monotonic() - self.began >= b.max_wall_seconds:
            return Bound.WALL_TIME, f"{b.max_wall_seconds:g}s of real time"
        return None

    def _move_clock(self, wake_at: datetime | None) -> Simulation | None:
        """Move the virtual clock to the next moment the run can move; a result when there
        is none before the end."""
        now = self.clock.now()
        event_at = self.store.next_event_at(now)
        moments = [m for m in (wake_at, event_at) if m is not None]
        if not moments:
            return self._result(End.STUCK, f"the run waits in state '{self.run.state}' for "
                                "something that never comes: no timer, and no scripted "
                                "event it subscribes to")
        following = min(moments)
        if following > self.until:
            self.clock.advance((self.until - now).total_seconds())
            if self.until_is_bound:
                return self._result(End.BOUND, f"{self.bounds.max_virtual} of virtual time",
                                    Bound.VIRTUAL_TIME)
            return self._result(End.UNTIL, f"the script's time ran out with the run waiting "
                                f"in state '{self.run.state}'")
        if following > now:
            self.clock.advance((following - now).total_seconds())
        return None

    def _result(self, end: End, message: str, bound: Bound | None = None) -> Simulation:
        run = self.run
        status = run.status
        if not status.finished and run.state is not None:
            status = RunStatus.WAITING  # as the store writes a released, unfinished run
        return Simulation(
            task=self.task.name, version=self.task.version, start=self.script.start,
            now=self.clock.now(), status=str(status), state=run.state, data=run.data,
            error=run.error, end=end, message=message, bound=bound, steps=self.steps,
            wall_seconds=round(time.monotonic() - self.began, 6),
            transitions=list(self.store.transitions), attempts=list(self.store.attempts),
            polls=list(self.store.polls.values()), consumed_events=list(self.store.consumed))
