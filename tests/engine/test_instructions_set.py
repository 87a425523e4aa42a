"""The set instruction: pure rendering of values at dotted paths."""

from __future__ import annotations

import pytest

from engine.errors import ExpressionError, InstructionError
from engine.instructions import ExecContext, execute
from engine.instructions import set as set_instruction
from engine.language.model import Instruction, SetSpec


def test_returns_rendered_values_by_path_in_order(make_ctx):
    ctx = make_ctx(render=lambda v: v.upper() if isinstance(v, str) else v)
    spec = SetSpec(values=(("b.x", "one"), ("a", {"k": 1}), ("c", 3)))
    result = set_instruction.EXECUTOR.execute(spec, ctx)
    assert result == {"b.x": "ONE", "a": {"k": 1}, "c": 3}
    assert list(result) == ["b.x", "a", "c"]


def test_empty_values_give_an_empty_result(ctx):
    assert set_instruction.EXECUTOR.execute(SetSpec(values=()), ctx) == {}


def test_malformed_path_is_an_instruction_error(ctx):
    with pytest.raises(InstructionError, match="empty segment"):
        set_instruction.EXECUTOR.execute(SetSpec(values=(("a..b", 1),)), ctx)


def test_template_failure_comes_out_of_execute_as_instruction_error():
    def render(value):
        raise ExpressionError("{{ x | nope }}", "no filter named 'nope'")

    ctx = ExecContext(render=render, timeout=1.0, idempotency_key="k", attempt=1)
    instruction = Instruction(kind="set", name="s", spec=SetSpec(values=(("a", "{{ x }}"),)))
    with pytest.raises(InstructionError, match="template error: no filter named 'nope'") as info:
        execute(instruction, ctx)
    assert (info.value.error_class, info.value.retryable) == ("error", False)
    assert isinstance(info.value.__cause__, ExpressionError)
