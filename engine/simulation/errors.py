"""The errors of a dry run: a script that cannot be read, and a world the script left
unsaid. Neither is an ``EngineError`` on purpose: an ``EngineError`` raised by an
instruction is something the runner handles (a failed attempt, a retry); these must stop
the simulation instead of being folded into the run's history."""

from __future__ import annotations

from collections.abc import Sequence

from engine.errors import Problem


class SimulationError(Exception):
    """Base of the errors that stop a dry run before it can report a history."""

    code = "simulation_error"


class ScriptError(SimulationError):
    """The script is not valid (or does not fit the task): ``problems`` says where and why."""

    code = "script_invalid"

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        first = self.problems[0] if self.problems else "invalid script"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")


class Unscripted(SimulationError):
    """The run called an instruction the script says nothing about."""

    code = "unscripted_instruction"

    def __init__(self, *, state: str, instruction: str, kind: str, target: str):
        self.state, self.instruction, self.kind, self.target = state, instruction, kind, target
        super().__init__(
            f"instruction '{instruction}' ({kind} {target}) in state '{state}' has no "
            f"scripted result: add it under `instructions:` as '{instruction}' or "
            f"'{state}/{instruction}', or under `calls:` by kind and pattern")
