"""Fixtures shared across test folders. Keep it small; append, don't rewrite."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

# A task that greets and then waits an hour: after one step a run is "waiting", with
# history, which is what the admin, dashboard and command tests need to show.
GREETER = """\
name: greeter
version: VERSION
description: Greets, then waits.
start_state: greet
states:
  greet:
    instructions:
      - set: {greeting: "Hello {{ input.name | default('world') }}"}
    transitions:
      - to: resting
  resting:
    transitions:
      - to: done
        wait: 1h
  done:
    final: succeeded
"""


@pytest.fixture(autouse=True)
def fresh_definition_cache():
    """Forget parsed definitions after each test: ``taskapp.selectors.definition_of`` caches by
    primary key, and rolled-back tests hand the same key to different definitions."""
    yield
    from taskapp.selectors import definition_of

    definition_of.cache_clear()


@pytest.fixture
def no_dispatch():
    """Nothing is sent to a cluster: the test advances runs itself (``run_advance``)."""
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none"}):
        yield


@pytest.fixture
def greeter(db):
    """Load version 1 of the greeter task; ``greeter(2)`` loads another version."""
    from taskapp.services import definition_load

    def load(version: int = 1):
        result = definition_load(text=greeter_text(version), source="greeter.yaml")
        assert result.status == "loaded", result.problems or result.message
        return result.definition

    return load


@pytest.fixture
def waiting_run(greeter, no_dispatch):
    """A greeter run advanced by one step: waiting in ``resting``, with two transitions."""
    from taskapp.services import run_advance, run_start

    greeter()
    run, _ = run_start(task="greeter", input={"name": "Ada"})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.state) == ("waiting", "resting")
    return run


def greeter_text(version: int = 1) -> str:
    return GREETER.replace("VERSION", str(version))


@pytest.fixture
def clock():
    """The engine's clock is a FakeClock starting now, for the test (``clock.advance(s)``)."""
    from engine.clock import FakeClock, SystemClock
    from taskapp.conf import conf

    fake = FakeClock(SystemClock().now())
    conf.clock = fake
    yield fake
    conf.clock = SystemClock()
