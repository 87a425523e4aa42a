"""The ``set`` instruction: pure, renders values to be written at dotted paths in the run's data.

It returns ``{dotted_path: value}``; the runner writes each entry with
``engine.datapaths.set_path``, in order, so a later path may overwrite part of an earlier one.
Nothing here does I/O, so the runner never retries it.
"""

from __future__ import annotations

from typing import Any

from engine.datapaths import split_path
from engine.errors import InstructionError
from engine.instructions import ExecContext
from engine.language.model import SetSpec


class SetExecutor:
    kind = "set"
    side_effects = False  # pure: nothing to commit before it, nothing to retry
    assigns = True
    spec_type = SetSpec

    def execute(self, spec: SetSpec, ctx: ExecContext) -> dict[str, Any]:
        """Render every value of ``spec``.

        Returns:
            ``{dotted_path: rendered value}`` in the order written.

        Raises:
            InstructionError: a path is malformed (the loader should have caught it).
            ExpressionError: a template failed (``engine.instructions.execute`` converts it).
        """
        values: dict[str, Any] = {}
        for path, value in spec.values:
            try:
                split_path(path)
            except ValueError as exc:
                raise InstructionError(f"set: {exc}") from exc
            values[path] = ctx.render(value)
        return values


EXECUTOR = SetExecutor()
