"""The executor registry and the dispatch contract of engine.instructions.execute."""

from __future__ import annotations

import pytest

from engine.errors import InstructionError, UnsupportedInstruction
from engine.instructions import (
    execute,
    executor_for,
    instruction_error,
    register,
    registered_kinds,
    unregister,
)
from engine.language.model import HttpSpec, Instruction, SetSpec


class _Fake:
    kind = "fake"

    def __init__(self, outcome):
        self.outcome = outcome

    def execute(self, spec, ctx):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@pytest.fixture
def fake():
    def install(outcome) -> Instruction:
        register(_Fake(outcome), replace=True)
        return Instruction(kind="fake", name="f1", spec=SetSpec(values=()))

    yield install
    unregister("fake")


def test_builtins_are_registered_on_import():
    assert {"http", "rpc", "set", "db", "message"} <= set(registered_kinds())
    assert executor_for("http").kind == "http"


def test_unknown_kind_is_unsupported_naming_the_known_ones():
    with pytest.raises(UnsupportedInstruction, match="'smtp'.*available: db, http") as info:
        executor_for("smtp")
    assert not info.value.retryable


def test_registering_a_second_executor_for_a_kind_needs_replace(fake):
    fake(1)
    with pytest.raises(ValueError, match="already registered"):
        register(_Fake(2))


def test_execute_dispatches_by_kind(fake, ctx):
    assert execute(fake({"ok": 1}), ctx) == {"ok": 1}


def test_instruction_errors_pass_through_unchanged(fake, ctx):
    original = instruction_error("boom", "5xx")
    with pytest.raises(InstructionError) as info:
        execute(fake(original), ctx)
    assert info.value is original and info.value.retryable


def test_unclassified_exceptions_become_error_class_error(fake, ctx):
    with pytest.raises(InstructionError, match="failed unexpectedly: KeyError: 'x'") as info:
        execute(fake(KeyError("x")), ctx)
    assert (info.value.error_class, info.value.retryable) == ("error", False)
    assert isinstance(info.value.__cause__, KeyError)


def test_system_exit_is_never_swallowed(fake, ctx):
    # django-q2 signals a task timeout with SystemExit: it must reach the worker.
    with pytest.raises(SystemExit):
        execute(fake(SystemExit(1)), ctx)


def test_spec_of_the_wrong_type_is_a_programming_error(ctx):
    instruction = Instruction(kind="set", name="s", spec=HttpSpec(url="http://x"))
    with pytest.raises(TypeError, match="carries a HttpSpec, expected SetSpec"):
        execute(instruction, ctx)
