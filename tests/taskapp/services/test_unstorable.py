"""The services refuse values the database cannot store, whoever calls them (the API's parser
refuses them first; management commands and other callers reach the services directly)."""

from __future__ import annotations

import pytest

from taskapp import models
from taskapp.services import ValueUnstorable, event_send, run_start

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.mark.parametrize("value, path, words", [
    ({"name": "a\x00"}, "input.name", "NUL"),
    ({"name": ["ok", {"deep": "\udc00"}]}, "input.name[1].deep", "lone surrogate (\\udc00)"),
    ({"n\x00": 1}, "input.n\x00", "key holding NUL"),
    ({"n": 2**63}, "input.n", "out of range"),
    ({"n": float("nan")}, "input.n", "NaN"),
    ({"n": float("-inf")}, "input.n", "-Infinity"),
])
def test_run_start_refuses_what_the_database_cannot_store(greeter, no_dispatch, value, path,
                                                          words):
    greeter()
    with pytest.raises(ValueUnstorable) as refused:
        run_start(task="greeter", input=value)
    assert refused.value.path == path and words in refused.value.reason
    assert not models.Run.objects.exists()


def test_event_send_refuses_what_the_database_cannot_store(db, no_dispatch):
    with pytest.raises(ValueUnstorable) as refused:
        event_send(name="paid", payload={"note": "\ud800"}, correlation="A")
    assert refused.value.path == "data.note"
    assert not models.Event.objects.exists()


def test_the_largest_values_are_stored(greeter, no_dispatch):
    greeter()
    value = {"n": -(2**63 - 1), "s": "\U0001f600 \u2028", "f": 1.5e-300}
    run, _ = run_start(task="greeter", input=value)
    run.refresh_from_db()
    assert run.input == value
