"""Errors of the service layer, each with a stable ``code`` the API returns."""

from __future__ import annotations

from collections.abc import Sequence

from taskapp.errorcodes import ErrorCode


class ServiceError(Exception):
    code: ErrorCode  # every concrete error names its own


class TaskNotFound(ServiceError):
    code = ErrorCode.TASK_NOT_FOUND

    def __init__(self, name: str, version: int | None = None):
        self.name, self.version = name, version
        which = f"version {version} of task '{name}'" if version else f"task '{name}'"
        super().__init__(f"{which} is not loaded; load it with `manage.py loadtasks`")


class RunNotFound(ServiceError):
    code = ErrorCode.RUN_NOT_FOUND

    def __init__(self, run_id: object):
        self.run_id = run_id
        super().__init__(f"run {run_id} does not exist")


class RunConflict(ServiceError):
    """The run's status does not allow what was asked."""

    code = ErrorCode.RUN_CONFLICT

    def __init__(self, run_id: object, status: str, action: str, allowed: Sequence[str]):
        self.run_id, self.status, self.action = run_id, status, action
        super().__init__(
            f"cannot {action} run {run_id}: it is {status}, not {_one_of(sorted(allowed))}")


class RedriveNeedsState(RunConflict):
    """A run that ended in a final state has no state of its own to resume in: the caller
    chooses one (the state it came from is the usual choice, so the message names it)."""

    def __init__(self, run_id: object, status: str, final_state: str, came_from: str | None,
                 choices: Sequence[str]):
        self.run_id, self.status, self.action = run_id, status, "redrive"
        hint = f"e.g. '{came_from}', where it came from; " if came_from else ""
        ServiceError.__init__(
            self,
            f"cannot redrive run {run_id} without a state: it ended in the final state "
            f"'{final_state}' ({status}); name the state to resume in, {hint}"
            f"one of {', '.join(choices)}",
        )


class UnknownRedriveState(RunConflict):
    """The state asked for is not one a run can be redriven into."""

    def __init__(self, run_id: object, status: str, state: str, final: bool,
                 choices: Sequence[str]):
        self.run_id, self.status, self.action = run_id, status, "redrive"
        why = "a final state" if final else "not a state of its task"
        ServiceError.__init__(
            self,
            f"cannot redrive run {run_id} to '{state}': that is {why}; "
            f"one of {', '.join(choices)}",
        )


def _one_of(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


class InputInvalid(ServiceError):
    """The input does not satisfy the task's ``input_schema``."""

    code = ErrorCode.INPUT_INVALID

    def __init__(self, task: str, errors: Sequence[dict[str, str]]):
        self.task, self.errors = task, list(errors)
        first = self.errors[0]
        super().__init__(
            f"input rejected by the input_schema of task '{task}': "
            f"{first['path'] or '(root)'}: {first['message']}"
        )

    def lines(self) -> list[str]:
        """Every schema error, one per line: ``path: message`` (``(root)`` for the root)."""
        return [f"{e['path'] or '(root)'}: {e['message']}" for e in self.errors]

class ValueTooLarge(ServiceError):
    """A value sent to a service is larger, as JSON, than its limit (``engine.limits``).

    ``field`` is the request field that carried it (``input``, ``payload``).
    """


    def __init__(self, field: str, what: str, size: int | None, limit: int, setting: str):
        self.field, self.what, self.size, self.limit, self.setting = (
            field, what, size, limit, setting)
        measured = "is nested too deeply to measure" if size is None else f"is {size:,} bytes"
        super().__init__(f"{what} {measured} as JSON; the limit is {limit:,} bytes ({setting})")


class InputTooLarge(ValueTooLarge):
    code = ErrorCode.INPUT_TOO_LARGE


class EventTooLarge(ValueTooLarge):
    code = ErrorCode.EVENT_TOO_LARGE


class ValueUnstorable(ServiceError):
    """A value the database cannot store (``taskapp.jsonvalues``): NUL or a lone surrogate
    in a string, an integer beyond 64 bits, NaN or Infinity."""

    code = ErrorCode.VALUE_UNSTORABLE

    def __init__(self, field: str, path: str, reason: str):
        self.field, self.path, self.reason = field, path, reason
        super().__init__(f"{path}: {reason}")

    @classmethod
    def refuse(cls, field: str, value: object) -> None:
        """Raise for the first unstorable value under ``value``, found as ``field``."""
        from taskapp.jsonvalues import find_unstorable

        problem = find_unstorable(value, root=field)
        if problem is not None:
            raise cls(field, problem.path, problem.reason)
