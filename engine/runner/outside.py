"""What a step reaches beyond its store and its clock: the instruction executors and the
environment that secrets are read from.

A real worker uses the defaults (the registered executors, ``os.environ``). A dry run
(``engine.simulation``) hands the runner a scripted world instead, through this one seam,
so the same runner, conditions, templates and predicates run without touching anything
outside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine import instructions
from engine.language.model import Instruction

# Runs one attempt of one instruction: ``engine.instructions.execute``'s contract (a result,
# or an ``InstructionError``).
Execute = Callable[[Instruction, instructions.ExecContext], Any]


@dataclass(frozen=True, slots=True)
class Outside:
    """The outside world of a step.

    Attributes:
        execute: runs an instruction's attempt (instructions and poll attempts alike).
        environ: where ``secrets.NAME`` and named connections are read; None: the process
            environment.
        log_runs: log each committed transition and the run's end (``async_states.runs``);
            a dry run's history is its report, not a run an operator should see in logs.
    """

    execute: Execute = instructions.execute
    environ: Mapping[str, str] | None = None
    log_runs: bool = True


REAL = Outside()
