"""The engine's error tree. Context lives in attributes; the message is built in ``__init__``.

``taskapp`` maps these to API errors with stable codes; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class RunErrorCode(StrEnum):
    """The ``code`` of a run's error and of its error transitions' detail: why a run ended
    outside a final state, or left a state by an error. Listed in docs/task-language.md."""

    CANCELLED = "cancelled"  # cancelled on request
    DEADLINE = "deadline"  # the run's deadline passed
    FAILED_STATE = "failed_state"  # the run reached a final state with outcome failed
    INSTRUCTION_FAILED = "instruction_failed"  # an instruction failed for good
    STATE_TIMEOUT = "state_timeout"  # no transition out of a state within its timeout
    POLL_EXHAUSTED = "poll_exhausted"  # a poll gave up (max_attempts / max_duration)
    CONDITION_ERROR = "condition_error"  # arming or checking a condition failed
    EXPRESSION_ERROR = "expression_error"  # ... because a predicate or template failed
    BUDGET_EXCEEDED = "budget_exceeded"  # ... because it spent more than its budget
    SIZE_LIMIT = "size_limit"  # a value was over its size limit
    STEP_CRASHES = "step_crashes"  # too many steps in a row crashed (MAX_STEP_CRASHES)


class Severity(StrEnum):
    """How bad a validation problem is: an error refuses the definition, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "engine_error"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of validation: where, what, and how bad.

    ``path`` is the dotted location inside the document (``states.pay.transitions[0].to``).
    """

    source: str
    line: int
    column: int
    path: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}"
        at = f" ({self.path})" if self.path else ""
        return f"{where}: {self.severity}: {self.message}{at}"


class SpecError(EngineError):
    """A task definition is invalid. ``problems`` holds every problem found, errors first."""

    code = "invalid_definition"

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.severity == Severity.ERROR]
        first = errors[0] if errors else (self.problems[0] if self.problems else None)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}" if first else "invalid task definition")


class ExpressionError(EngineError):
    """A template or predicate does not parse, or failed when evaluated."""

    code = RunErrorCode.EXPRESSION_ERROR

    def __init__(self, expression: str, reason: str, line: int | None = None):
        self.expression = expression
        self.reason = reason
        self.line = line
        super().__init__(f"{reason} in {expression!r}")


class BudgetExceeded(ExpressionError):
    """A template or predicate spent more than its budget (time, operations or output).

    ``setting`` names the setting that holds the budget and ``limit`` its value, so that the
    message says both what to change and what the expression tried to do.
    """

    code = RunErrorCode.BUDGET_EXCEEDED
    _SHOWN = 120  # characters of the expression quoted in the message

    def __init__(self, expression: str, what: str, setting: str, limit: float):
        self.what = what
        self.setting = setting
        self.limit = limit
        shown = expression if len(expression) <= self._SHOWN else (
            f"{expression[: self._SHOWN]}... ({len(expression)} characters)")
        shown_limit = f"{limit:g}" if isinstance(limit, float) else str(limit)
        super().__init__(shown, f"template budget exceeded: {what} over {setting}={shown_limit}")
        self.expression = expression


class InstructionError(EngineError):
    """An instruction attempt failed.

    ``error_class`` is what retry policies select on: ``connection``, ``timeout``,
    ``conflict``, ``5xx``, ``429``, ``4xx``, ``status`` or ``error``. ``retryable`` is the
    kind's own default (a policy's ``retry_on`` decides in the end). ``result`` is what the
    far end answered, when it answered.
    """

    code = RunErrorCode.INSTRUCTION_FAILED

    def __init__(
        self,
        message: str,
        *,
        error_class: str = "error",
        retryable: bool = False,
        result: object = None,
    ):
        self.error_class = error_class
        self.retryable = retryable
        self.result = result
        super().__init__(message)


class UnsupportedInstruction(InstructionError):
    """The instruction kind has no executor registered in this process."""

    code = "unsupported_instruction"

    def __init__(self, kind: str, known: Sequence[str]):
        self.kind = kind
        self.known = tuple(known)
        super().__init__(
            f"no executor for instruction kind {kind!r} (available: {', '.join(sorted(known))})",
            error_class="error",
            retryable=False,
        )


class UnknownCondition(EngineError):
    """No condition plugin is registered for a kind a definition uses."""

    code = "unknown_condition"

    def __init__(self, kind: str, known: Sequence[str]):
        self.kind = kind
        self.known = tuple(known)
        super().__init__(
            f"no condition plugin for kind {kind!r} (available: {', '.join(sorted(known))})")


class LeaseLost(EngineError):
    """Another worker owns the run now: this step must stop without writing."""

    code = "lease_lost"

    def __init__(self, run_id: object):
        self.run_id = run_id
        super().__init__(f"run {run_id}: lease lost to another worker; step abandoned")
