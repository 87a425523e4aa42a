"""How far a dry run may go, and how it ended.

Every simulation ends in bounded time and memory: a bound of steps, of transitions, of
virtual time and of wall time, and the run's data and results capped as a real run's are
(``MAX_DATA_BYTES``, ``MAX_RESULT_BYTES``). The script itself is read within the task
reader's limits (``engine.simulation.script``). The ending says which bound was hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class End(StrEnum):
    """Why a simulation stopped."""

    FINISHED = "finished"  # the run ended (succeeded, failed, timed out)
    STUCK = "stuck"  # the run waits for nothing that can ever come: no timer, no event
    UNTIL = "until"  # the script's virtual time ran out with the run still waiting
    BOUND = "bound"  # a bound below was hit


class Bound(StrEnum):
    STEPS = "steps"
    TRANSITIONS = "transitions"
    VIRTUAL_TIME = "virtual_time"
    WALL_TIME = "wall_time"


@dataclass(frozen=True, slots=True)
class Bounds:
    """The limits of one simulation (defaults suit the API and ``--check``).

    Attributes:
        max_steps: runner steps (each as a worker would make one).
        max_transitions: transitions in the history: a loop with no exit ends here.
        max_virtual: virtual time from the start, whatever ``until`` says.
        max_wall_seconds: real time, all steps together (also each step's own budget).
        max_data_bytes, max_result_bytes: the run's data and one result, as JSON.
    """

    max_steps: int = 2_000
    max_transitions: int = 1_000
    max_virtual: timedelta = timedelta(days=3_660)
    max_wall_seconds: float = 10.0
    # As a deployment's defaults (MAX_DATA_BYTES, MAX_RESULT_BYTES): a dry run refuses what
    # a real run would, and its memory stays bounded when the settings turn a limit off.
    max_data_bytes: int = 4 * 1024 * 1024
    max_result_bytes: int = 2 * 1024 * 1024
