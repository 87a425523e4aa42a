"""Errors of the service layer, each with a stable ``code`` the API returns."""

from __future__ import annotations

from collections.abc import Sequence


class ServiceError(Exception):
    code = "error"


class TaskNotFound(ServiceError):
    code = "task_not_found"

    def __init__(self, name: str, version: int | None = None):
        self.name, self.version = name, version
        which = f"version {version} of task '{name}'" if version else f"task '{name}'"
        super().__init__(f"{which} is not loaded; load it with `manage.py loadtasks`")


class RunNotFound(ServiceError):
    code = "run_not_found"

    def __init__(self, run_id: object):
        self.run_id = run_id
        super().__init__(f"run {run_id} does not exist")


class RunConflict(ServiceError):
    """The run's status does not allow what was asked."""

    code = "run_conflict"

    def __init__(self, run_id: object, status: str, action: str, allowed: Sequence[str]):
        self.run_id, self.status, self.action = run_id, status, action
        super().__init__(
            f"cannot {action} run {run_id}: it is {status}; {action} needs one of "
            f"{', '.join(allowed)}"
        )


class RunNotActive(RunConflict):
    code = "run_not_active"


class InputInvalid(ServiceError):
    """The input does not satisfy the task's ``input_schema``."""

    code = "input_invalid"

    def __init__(self, task: str, errors: Sequence[dict[str, str]]):
        self.task, self.errors = task, list(errors)
        first = self.errors[0]
        super().__init__(
            f"input rejected by the input_schema of task '{task}': "
            f"{first['path'] or '(root)'}: {first['message']}"
        )


class ValueUnstorable(ServiceError):
    """A value the database cannot store (``taskapp.jsonvalues``): NUL or a lone surrogate
    in a string, an integer beyond 64 bits, NaN or Infinity."""

    code = "value_unstorable"

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
