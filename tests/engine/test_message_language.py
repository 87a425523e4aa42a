"""How the loader reads a message: connections checked against the loading environment."""

from __future__ import annotations

import pytest

from engine.language import validate_text

TASK = """\
name: t
version: 1
start_state: a
states:
  a:
    instructions:
      - message: {{broker: {broker}, connection: orders, to: q}}
    transitions: [{{to: done}}]
  done: {{final: succeeded}}
"""


def problems(broker: str):
    return [str(p) for p in validate_text(TASK.format(broker=broker), "t.yaml").problems]


@pytest.mark.parametrize(
    ("broker", "url"),
    [
        ("amqp", "amqp://u:p@h/v"),
        ("amqp", "amqps://h"),
        ("mqtt", "mqtt://h"),
        ("nats", "nats://h"),
        ("redis", "rediss://h/0"),
    ],
)
def test_a_configured_connection_of_the_right_scheme_loads_cleanly(monkeypatch, broker, url):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_ORDERS", url)
    assert problems(broker) == []


def test_a_connection_whose_scheme_does_not_serve_the_broker_is_an_error(monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_CONNECTION_ORDERS", "redis://:hunter2-long@h/0")
    [problem] = problems("amqp")
    assert problem == (
        "t.yaml:7:45: error: connection 'orders' is a redis URL, which does not serve the amqp "
        "broker; name a connection whose URL scheme is amqp or amqps, or fix "
        "ASYNC_STATES_CONNECTION_ORDERS "
        "(states.a.instructions[0].message.connection)"
    )
    assert "hunter2" not in problem


def test_an_unconfigured_connection_is_only_a_warning(monkeypatch):
    monkeypatch.delenv("ASYNC_STATES_CONNECTION_ORDERS", raising=False)
    report = validate_text(TASK.format(broker="nats"), "t.yaml")
    assert report.ok and report.task is not None
    assert [p.severity for p in report.problems] == ["warning"]


def test_url_still_loads_for_tasks_written_before_connections():
    text = TASK.replace("connection: orders", 'url: "{{{{ secrets.REDIS_URL }}}}"')
    report = validate_text(text.format(broker="redis"), "t.yaml")
    assert report.problems == ()
    assert report.task.states[0].instructions[0].spec.url == "{{ secrets.REDIS_URL }}"
