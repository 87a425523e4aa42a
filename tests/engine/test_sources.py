"""Broker messages to events (``engine.sources``): the templates over ``message``, the
default id, the budgets and size limit that make a message poison, and which sources a set
of definitions declares."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.budgets import TemplateLimits
from engine.language import validate_text
from engine.sources import (
    EventMapping,
    Incoming,
    PoisonMessage,
    event_key,
    sources_of,
    to_events,
)
from engine.sources.listener import describe

LIMITS = TemplateLimits()


def message(body: object, **kwargs) -> Incoming:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Incoming(body=raw, topic=kwargs.pop("topic", "orders"),
                    headers=kwargs.pop("headers", {}), **kwargs)


def test_templates_over_the_message_name_address_and_identify_the_event():
    mapping = EventMapping(event="{{ message.body.type }}",
                           correlation="{{ message.headers.order }}",
                           id="{{ message.topic }}-{{ message.body.seq }}")
    [draft] = to_events(message({"type": "order.paid", "seq": 4}, headers={"order": "A-1"}),
                        [mapping], max_bytes=1000, limits=LIMITS)
    assert (draft.name, draft.correlation, draft.key) == ("order.paid", "A-1",
                                                         "order.paid:orders-4")
    assert draft.payload == {"type": "order.paid", "seq": 4}


def test_the_default_id_is_the_messages_own_else_a_digest_of_it():
    mapping = EventMapping(event="ping")
    [own] = to_events(message({}, id="m-1"), [mapping], max_bytes=100, limits=LIMITS)
    assert own.key == "ping:m-1"
    first, again, other = (to_events(message(b), [mapping], max_bytes=100, limits=LIMITS)[0]
                           for b in ({"a": 1}, {"a": 1}, {"a": 2}))
    assert first.key == again.key != other.key
    assert first.key.startswith("ping:sha256:")


def test_a_body_that_is_not_json_is_its_text():
    [draft] = to_events(message(b"plain words"), [EventMapping(event="note")], max_bytes=100,
                        limits=LIMITS)
    assert draft.payload == "plain words"


def test_mappings_that_make_the_same_event_make_it_once():
    mappings = [EventMapping(event="a"), EventMapping(event="a"), EventMapping(event="b")]
    drafts = to_events(message({}, id="1"), mappings, max_bytes=100, limits=LIMITS)
    assert sorted(d.key for d in drafts) == ["a:1", "b:1"]


@pytest.mark.parametrize(("body", "mapping", "reason"), [
    ({"pad": "x" * 200}, EventMapping(event="e"), "over MAX_EVENT_BYTES=100"),
    (b"\xff\xfe", EventMapping(event="e"), "not UTF-8"),
    ({}, EventMapping(event="e", correlation="{{ message.body.missing }}"), "missing"),
    ({}, EventMapping(event="{{ message.body }}"), "event name rendered"),
    ({}, EventMapping(event="e", id="{{ '' }}"), "id rendered empty"),
    ({}, EventMapping(event="e", correlation="{{ 'x' * 501 }}"), "over 500"),
    ({}, EventMapping(event="e", id="{% for i in range(10**6) %}{{ i }}{% endfor %}"),
     "TEMPLATE_MAX_OPERATIONS"),
])
def test_a_message_that_cannot_become_an_event_is_poison(body, mapping, reason):
    with pytest.raises(PoisonMessage) as caught:
        to_events(message(body), [mapping], max_bytes=100,
                  limits=TemplateLimits(max_operations=1000))
    assert reason in caught.value.reason


def test_a_long_id_is_stored_as_a_digest_within_the_column():
    key = event_key("e" * 150, "i" * 150)
    assert len(key) <= 200 and key.startswith("e" * 100 + ":sha256:")


TASK = """
name: t
version: 1
start_state: a
states:
  a:
    transitions:
      - to: b
        subscribe:
          event: paid
          source: {broker: amqp, connection: shop, queue: q, correlation: "{{ message.body.o }}"}
      - to: b
        subscribe:
          event: refunded
          source: {broker: amqp, connection: shop, queue: q}
      - to: b
        subscribe: {event: cancelled}
  b:
    transitions:
      - to: done
        subscribe:
          event: scanned
          source: {broker: mqtt, connection: devices, topic: depots/+/scans}
  done: {final: succeeded}
"""


def test_sources_of_gives_one_entry_per_distinct_source_with_every_mapping():
    report = validate_text(TASK, "t.yaml")
    assert report.ok, report.problems
    found = sources_of([report.task, report.task])
    assert len(found) == 2
    amqp = next(v for k, v in found.items() if k[0] == "amqp")
    assert amqp[1] == {EventMapping("paid", "{{ message.body.o }}"), EventMapping("refunded")}
    assert describe(amqp[0]) == "amqp connection 'shop' queue 'q'"


@pytest.mark.parametrize(("source", "problem"), [
    ("{broker: kafka, connection: c, topic: t}", "bad broker 'kafka'"),
    ("{broker: mqtt, topic: t}", "missing required key 'connection'"),
    ("{broker: mqtt, connection: c, topic: $share/g/t}", "without '$share/...'"),
    ("{broker: amqp, connection: c, queue: q, binding: x}", "name the exchange too"),
    ("{broker: redis, connection: c, channel: x, group: g}", "a channel has none"),
    ("{broker: nats, connection: c, stream: S}", "a nats source needs 'subject'"),
    ("{broker: mqtt, connection: c, topic: t, id: '{{ secrets.K }}'}", "secrets"),
    ("{broker: mqtt, connection: c, topic: t, event: '{{ message.'}", "does not parse"),
])
def test_a_bad_source_is_refused_with_a_clear_problem(source, problem):
    text = TASK.replace("{broker: mqtt, connection: devices, topic: depots/+/scans}", source)
    report = validate_text(text, "t.yaml")
    assert not report.ok
    assert any(problem in p.message for p in report.problems), report.problems


BODIES = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=20).map(lambda value: json.dumps(value).encode()),
)
MAPPINGS = st.sampled_from([
    EventMapping(event="e"),
    EventMapping(event="{{ message.topic }}", id="{{ message.body }}"),
    EventMapping(event="e", correlation="{{ message.body.a }}"),
    EventMapping(event="e", correlation="{{ message.headers | tojson }}",
                 id="{{ message.text | length }}"),
    EventMapping(event="{{ message.body[0] }}"),
])


@settings(max_examples=300, deadline=None)
@given(body=BODIES, topic=st.text(max_size=40),
       headers=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
       ident=st.none() | st.text(max_size=300), mapping=MAPPINGS)
def test_any_message_becomes_bounded_events_or_poison(body, topic, headers, ident, mapping):
    message = Incoming(body=body, topic=topic, headers=headers, id=ident)
    try:
        drafts = to_events(message, [mapping], max_bytes=256, limits=LIMITS)
    except PoisonMessage as exc:
        assert exc.reason
        return
    for draft in drafts:
        assert 0 < len(draft.name) <= 200 and len(draft.key) <= 200
        assert draft.correlation is None or len(draft.correlation) <= 500
        json.dumps(draft.payload)
