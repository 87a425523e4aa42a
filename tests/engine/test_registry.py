"""One registry type for every plugin family: duplicates refused, unknown kinds named, and
what the runner needs to know declared by the plugins themselves."""

from __future__ import annotations

import pytest

from engine import conditions, instructions
from engine.errors import UnknownCondition, UnsupportedInstruction
from engine.registry import Registry


class _Plugin:
    def __init__(self, kind: str):
        self.kind = kind


class _Unknown(LookupError):
    def __init__(self, kind, known):
        super().__init__(f"{kind} not in {known}")


def test_a_registry_returns_what_was_registered_and_lists_kinds_sorted():
    registry: Registry[_Plugin] = Registry("thing", _Unknown)
    b, a = registry.register(_Plugin("b")), registry.register(_Plugin("a"))
    assert registry.get("a") is a and registry.get("b") is b
    assert registry.kinds() == ("a", "b")
    assert registry.plugins() == (a, b)


def test_a_second_plugin_for_a_kind_is_refused_unless_replacing():
    registry: Registry[_Plugin] = Registry("thing", _Unknown)
    first = registry.register(_Plugin("a"))
    with pytest.raises(ValueError, match="thing plugin for kind 'a' is already registered"):
        registry.register(_Plugin("a"))
    assert registry.get("a") is first
    second = registry.register(_Plugin("a"), replace=True)
    assert registry.get("a") is second
    registry.register(second)  # the same plugin again is no conflict


def test_an_unknown_kind_raises_the_familys_error_with_the_known_kinds():
    registry: Registry[_Plugin] = Registry("thing", _Unknown)
    registry.register(_Plugin("a"))
    with pytest.raises(_Unknown, match=r"z not in \('a',\)"):
        registry.get("z")
    registry.unregister("a")
    assert registry.kinds() == ()


def test_both_families_use_the_one_registry_type():
    assert isinstance(conditions.REGISTRY, Registry)
    assert isinstance(instructions.REGISTRY, Registry)


def test_an_unknown_condition_kind_names_the_known_ones():
    with pytest.raises(UnknownCondition, match="'telepathy'.*available: always, poll"):
        conditions.plugin_for("telepathy")


def test_a_condition_kind_cannot_be_registered_twice_by_accident():
    with pytest.raises(ValueError, match="condition plugin for kind 'wait'"):
        conditions.register(_Plugin("wait"))


def test_an_unknown_instruction_kind_is_an_instruction_error_for_on_error():
    with pytest.raises(UnsupportedInstruction, match="'smtp'"):
        instructions.executor_for("smtp")


@pytest.mark.parametrize("kind", ["http", "rpc", "db", "message"])
def test_calls_declare_side_effects_and_a_single_result(kind):
    assert instructions.has_side_effects(kind)
    assert not instructions.assigns_paths(kind)


def test_set_declares_itself_pure_and_assigning():
    assert not instructions.has_side_effects("set")
    assert instructions.assigns_paths("set")


def test_a_plugin_that_declares_nothing_is_taken_as_side_effecting():
    instructions.register(_Plugin("quiet"))
    try:
        assert instructions.has_side_effects("quiet")
        assert not instructions.assigns_paths("quiet")
    finally:
        instructions.unregister("quiet")
