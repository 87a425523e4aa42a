"""The run loop: advance one run as far as it can go, then say when to look at it again.

One call to ``Runner.advance`` is one *step*, made by a worker that holds the run's lease.
It enters states, runs their instructions in order (with retries), arms and races the
outgoing transitions' conditions (``engine.runner.io_race`` races those that do I/O), and
applies the first one fulfilled. Transitions are committed through the ``RunStore`` before
anything outside the database happens: before a state's side-effecting instructions run,
before polls, before subscriptions are armed, and when the step ends
(``engine.runner.batch``). A chain of transitions with nothing but data in between (no
instructions, or only ones without side effects) is committed together: replaying it after
a crash gives the same result, so nothing is lost and nothing is applied twice. When nothing
more can happen now, the step returns the next wake-up time and the worker is released:
waiting holds no process and no thread.

The runner knows nothing of Django or django-q2; ``taskapp`` claims runs, hands it a
snapshot and a store, and schedules the wake-up.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from engine.clock import Clock
from engine.runner.control import prepare_cancel, prepare_crash_failure, prepare_redrive
from engine.runner.outside import REAL, Outside
from engine.runner.settings import EngineSettings
from engine.runner.step import Park, Step
from engine.runs import RunSnapshot, StepOutcome
from engine.store import RunStore

__all__ = [
    "EngineSettings", "Outside", "Park", "Runner", "prepare_cancel", "prepare_crash_failure",
    "prepare_redrive",
]


class Runner:
    """Advances runs. One instance per worker process; ``pool`` races I/O conditions;
    ``outside`` is what the steps reach beyond the store (``engine.runner.outside``)."""

    def __init__(
        self,
        *,
        store: RunStore,
        clock: Clock,
        pool: ThreadPoolExecutor,
        settings: EngineSettings | None = None,
        outside: Outside = REAL,
    ):
        self.outside = outside
        self.store = store
        self.clock = clock
        self.pool = pool
        self.settings = settings or EngineSettings()

    def advance(self, run: RunSnapshot) -> StepOutcome:
        """Advance ``run`` until it must wait, ends, or the step's budget is spent.

        Raises:
            LeaseLost: another worker took the run over; this step wrote nothing more.
        """
        return Step(
            run, store=self.store, clock=self.clock, pool=self.pool, settings=self.settings,
            outside=self.outside,
        ).go()
