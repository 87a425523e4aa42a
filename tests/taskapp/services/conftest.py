"""Service tests drive runs themselves: nothing is dispatched to a cluster, and time is a
FakeClock starting now (the database's own auto timestamps stay real)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from engine.clock import FakeClock, SystemClock
from taskapp.conf import conf
from taskapp.services import definition_load


@pytest.fixture(autouse=True)
def no_dispatch():
    with override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none",
                                         "INLINE_RETRY_MAX_SECONDS": 0.0}):
        yield


@pytest.fixture
def clock():
    fake = FakeClock(SystemClock().now())
    conf.clock = fake
    yield fake
    conf.clock = SystemClock()


@pytest.fixture
def load_task(db):
    def load(text: str, source: str = "test.yaml"):
        result = definition_load(text=text, source=source)
        assert result.status == "loaded", result.problems or result.message
        return result.definition
    return load
