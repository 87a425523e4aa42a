"""A real listener (``engine.sources.listener``) on a real broker, storing events through the
real events service, on the test database (its own thread: ``transactional_db``)."""

from __future__ import annotations

import time

import pytest

from engine.budgets import TemplateLimits
from engine.language.model import SourceSpec
from engine.sources import EventMapping, consumer_of
from engine.sources.listener import Listener
from taskapp import models
from taskapp.listeners import _close_connection, _deliver


def wait_until(check, timeout: float = 15.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def events(name: str) -> list[models.Event]:
    return list(models.Event.objects.filter(name=name).order_by("id"))


@pytest.fixture
def listen(transactional_db):
    """``listen(source, mapping)`` starts a listener and waits until it is connected."""
    started: list[Listener] = []

    def start(source: SourceSpec, *mappings: EventMapping, max_bytes: int = 256 * 1024,
              wait: bool = True) -> Listener:
        listener = Listener(source, frozenset(mappings), consume=consumer_of(source.broker),
                            deliver=_deliver, max_bytes=max_bytes, limits=TemplateLimits(),
                            max_backoff=1.0, on_exit=_close_connection)
        listener.start()
        started.append(listener)
        if wait:
            wait_until(lambda: listener.state()["connected"], what="the listener connecting")
        return listener

    yield start
    for listener in started:
        listener.stop()
    for listener in started:
        listener.join(timeout=10)
