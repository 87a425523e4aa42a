"""The lifecycle: key and setting, checked against the loading environment; the events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.language import validate_text
from engine.language.lifecycle_parser import parse_lifecycle
from engine.language.model import Lifecycle
from engine.lifecycle import Row, RunFacts, destination_from_key, destination_key, events_of
from engine.runs import RunStatus

TASK = """\
name: t
version: 1
start_state: a
lifecycle: {lifecycle}
states:
  a: {{final: succeeded}}
"""


def report(lifecycle: str):
    return validate_text(TASK.format(lifecycle=lifecycle), "t.yaml")


def problems(lifecycle: str) -> list[str]:
    return [str(p) for p in report(lifecycle).problems]


@pytest.mark.parametrize(
    ("url", "lifecycle", "expected"),
    [
        ("https://h/hook?token=x", "{connection: events}", Lifecycle("events")),
        ("amqp://u:p@h/v", "{connection: events, to: runs, exchange: ex}",
         Lifecycle("events", "runs", exchange="ex")),
        ("nats://h", "{connection: events, to: runs.x, jetstream: true}",
         Lifecycle("events", "runs.x", jetstream=True)),
        ("mqtt://h", "{connection: events, to: runs/x, qos: 2}",
         Lifecycle("events", "runs/x", qos=2)),
        ("redis://h/0", "{connection: events, to: runs, stream: true}",
         Lifecycle("events", "runs", stream=True)),
    ],
)
def test_a_configured_connection_loads(monkeypatch, url, lifecycle, expected):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", url)
    found = report(lifecycle)
    assert list(found.problems) == [] and found.task.lifecycle == expected
    assert destination_from_key(destination_key(expected)) == expected


def test_a_scheme_nothing_publishes_to_is_an_error_at_its_place(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", "ftp://u:hunter2@h/x")
    [problem] = problems("{connection: events}")
    assert problem == (
        "t.yaml:4:25: error: connection 'events' is a ftp URL, which lifecycle events cannot be "
        "published to; use amqp, mqtt, nats, redis (a broker) or http, https (a webhook) in "
        "ASYNC_STATES_CONNECTION_EVENTS (lifecycle.connection)")
    assert "hunter2" not in problem


def test_an_unconfigured_connection_is_a_warning(monkeypatch):
    monkeypatch.delenv("ASYNC_STATES_CONNECTION_EVENTS", raising=False)
    found = report("{connection: events, to: x}")
    assert found.ok and [str(p) for p in found.problems] == [
        "t.yaml:4:25: warning: connection 'events' is not configured here "
        "(ASYNC_STATES_CONNECTION_EVENTS is not set); the cluster's environment must set it to "
        "a broker's URL (amqp, mqtt, nats, redis) or a webhook's (http, https) "
        "(lifecycle.connection)"]


@pytest.mark.parametrize(
    ("url", "lifecycle", "message"),
    [
        ("http://h/x", "{connection: events, to: x}",
         "t.yaml:4:33: error: to is not for a webhook connection"),
        ("amqp://h", "{connection: events}",
         "t.yaml:4:12: error: lifecycle needs 'to' for a amqp connection"),
        ("nats://h", "{connection: events, to: x, qos: 1}",
         "t.yaml:4:40: error: qos is only for the mqtt broker, and this connection is nats"),
        ("nats://h", "{connection: https://h/x}",
         "t.yaml:4:25: error: connection name 'https://h/x' must be lower-case"),
        ("nats://h", "{connection: events, topic: x}",
         "t.yaml:4:33: error: unknown key 'topic' in lifecycle"),
    ],
)
def test_keys_the_connection_does_not_take_are_errors(monkeypatch, url, lifecycle, message):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", url)
    assert any(p.startswith(message) for p in problems(lifecycle)), problems(lifecycle)


def test_the_deployment_setting_reads_like_the_key(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_EVENTS", "nats://h")
    assert parse_lifecycle('{"connection": "events", "to": "x"}', "S") == (
        Lifecycle("events", "x"), [])
    assert parse_lifecycle("", "S") == (None, [])
    found, [problem] = parse_lifecycle("{connection: events}", "S")
    assert found is None and "needs 'to'" in str(problem)


AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_a_run_whose_start_state_is_final_says_started_and_finished():
    run = RunFacts(id="r1", task="t", version=2, status=RunStatus.SUCCEEDED)
    events = events_of(run, [Row(1, "", "a", "start", AT, entry=1)], "/here/")
    assert [(e["type"], e["id"]) for e in events] == [
        ("async_states.run.started", "r1.1"), ("async_states.run.finished", "r1.1.finished")]
    assert events[0]["time"] == "2026-01-02T03:04:05.678000Z"
    assert events[0]["source"] == "/here/tasks/t"
    assert events[1]["data"]["outcome"] == "succeeded" and events[1]["data"]["error"] is None


def test_a_run_ended_outside_a_state_finishes_with_its_error():
    error = {"code": "timeout", "state": "b"}
    run = RunFacts(id="r1", task="t", version=1, status=RunStatus.TIMED_OUT, error=error)
    rows = [Row(4, "a", "b", "condition", AT), Row(5, "b", "", "timeout", AT)]
    events = events_of(run, rows, "/s")
    assert [e["type"] for e in events] == ["async_states.run.transition",
                                           "async_states.run.finished"]
    assert events[0]["data"]["status"] == "running"
    assert events[1]["data"] == {
        "run_id": "r1", "task": "t", "version": 1, "seq": 5, "from_state": "b",
        "to_state": None, "trigger": "timeout", "entry": 0, "time_in_state": 0.0,
        "status": "timed_out", "outcome": "timed_out", "error": error}
