"""The listener's own behaviour, with a scripted ``consume`` in place of a broker: it
reconnects after failures with a capped backoff that starts afresh once connected, counts
messages, events and repeats, acknowledges a poison message, never acknowledges one whose
events could not be stored, and names the connection, never its password."""

from __future__ import annotations

import json
import threading
import time

from engine.budgets import TemplateLimits
from engine.language.model import SourceSpec
from engine.sources import EventMapping, Incoming
from engine.sources.listener import Listener

SOURCE = SourceSpec(broker="redis", connection="cache", channel="orders")
URL = "redis://:Pa55-word-x@127.0.0.1:6379/0"


def run_listener(monkeypatch, script, deliver=lambda drafts: [True] * len(drafts), **kwargs):
    """Run a listener whose ``consume`` calls ``script(handle, connected, attempt)`` on each
    connection, until ``script`` returns False; the acknowledged messages are returned."""
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_CACHE", URL)
    acked: list[bytes] = []
    attempts = [0]
    done = threading.Event()

    def consume(source, url, handle, stop, connected):
        attempts[0] += 1
        def acking(message):
            handle(message)
            acked.append(message.body)
        if script(acking, connected, attempts[0]) is False:
            done.set()
            stop.wait(10)
    listener = Listener(SOURCE, frozenset({EventMapping(event="order.paid")}), consume=consume,
                        deliver=deliver, max_bytes=100, limits=TemplateLimits(),
                        max_backoff=0.05, **kwargs)
    listener.start()
    assert done.wait(10)
    state = listener.state()
    listener.stop()
    listener.join(5)
    assert not listener.is_alive()
    return state, acked


def message(body: bytes, ident: str) -> Incoming:
    return Incoming(body=body, topic="orders", headers={}, id=ident)


def test_reconnects_after_failures_and_counts_what_it_took(monkeypatch):
    monkeypatch.setattr("engine.sources.listener.BACKOFF_FIRST", 0.01)

    def script(handle, connected, attempt):
        if attempt < 3:
            raise ConnectionError(f"refused by {URL}")
        connected()
        handle(message(b'{"a": 1}', "m1"))
        return False

    state, acked = run_listener(monkeypatch, script)
    assert (state["connected"], state["reconnects"], state["messages"], state["events"]) == (
        True, 2, 1, 1)
    assert acked == [b'{"a": 1}']
    assert "Pa55-word-x" not in json.dumps(state)
    assert "connection 'cache'" in state["last_error"]


def test_a_repeat_is_counted_as_a_duplicate(monkeypatch):
    seen: set[str] = set()

    def deliver(drafts):
        new = [d.key not in seen for d in drafts]
        seen.update(d.key for d in drafts)
        return new

    def script(handle, connected, attempt):
        connected()
        handle(message(b"{}", "same"))
        handle(message(b"{}", "same"))
        return False

    state, _ = run_listener(monkeypatch, script, deliver)
    assert (state["messages"], state["events"], state["duplicates"]) == (2, 1, 1)


def test_a_poison_message_is_acknowledged_and_reported(monkeypatch):
    def script(handle, connected, attempt):
        connected()
        handle(message(b"x" * 500, "big"))
        return False

    state, acked = run_listener(monkeypatch, script)
    assert acked == [b"x" * 500]
    assert (state["poison"], state["errors"], state["events"]) == (1, 1, 0)
    assert "MAX_EVENT_BYTES=100" in state["last_error"]


def test_a_message_whose_events_were_not_stored_is_not_acknowledged(monkeypatch):
    monkeypatch.setattr("engine.sources.listener.BACKOFF_FIRST", 0.01)
    calls = [0]

    def deliver(drafts):
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("the database went away")
        return [True]

    def script(handle, connected, attempt):
        connected()
        handle(message(b"{}", "m1"))  # the first attempt raises through here: no ack
        return False

    state, acked = run_listener(monkeypatch, script, deliver)
    assert acked == [b"{}"]  # acknowledged once, on the second delivery
    assert (state["reconnects"], state["events"]) == (1, 1)
    assert "the database went away" in state["last_error"]


def test_a_connection_of_another_broker_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_CACHE", "amqp://u:Secret-99@h/")
    listener = Listener(SOURCE, frozenset(), consume=lambda *a: None, deliver=lambda d: [],
                        max_bytes=100, limits=TemplateLimits())
    listener.start()
    deadline = time.monotonic() + 5
    while listener.state()["errors"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    listener.stop()
    listener.join(5)
    error = listener.state()["last_error"]
    assert "does not serve the redis broker" in error and "Secret-99" not in error


def test_a_connection_that_is_not_configured_is_flagged_and_looked_for_again(monkeypatch):
    monkeypatch.delenv("ASYNC_STATES_CONNECTION_CACHE", raising=False)
    monkeypatch.setattr("engine.sources.listener.BACKOFF_FIRST", 0.01)
    listener = Listener(SOURCE, frozenset(), consume=lambda *a: None, deliver=lambda d: [],
                        max_bytes=100, limits=TemplateLimits(), max_backoff=0.01)
    listener.start()
    deadline = time.monotonic() + 5
    while listener.state()["errors"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    listener.stop()
    listener.join(5)
    state = listener.state()
    assert (state["configured"], state["connected"]) == (False, False)
    assert "ASYNC_STATES_CONNECTION_CACHE" in state["last_error"]


def test_a_subscription_the_broker_ended_is_taken_up_again_after_a_backoff(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_CACHE", URL)
    calls: list[float] = []
    listener = Listener(SOURCE, frozenset(), consume=lambda *a: calls.append(time.monotonic()),
                        deliver=lambda d: [], max_bytes=100, limits=TemplateLimits(),
                        max_backoff=0.2)
    listener.start()
    time.sleep(0.6)
    listener.stop()
    listener.join(5)
    assert 2 <= len(calls) <= 5  # 0.5 s, then 0.2 s apart: never a busy loop
    assert listener.state()["last_error"] == "ConnectionError: the broker ended the subscription"
