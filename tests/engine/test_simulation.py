"""Dry runs: the real runner on a virtual clock against a scripted world (engine.simulation)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.language import load_file, load_text
from engine.simulation import (
    Bound,
    Bounds,
    End,
    ScriptError,
    Unscripted,
    parse_script,
    script_from_data,
    simulate,
)
from engine.simulation.check import mismatches

ROOT = Path(__file__).resolve().parents[2]
FULFILMENT = load_file(ROOT / "taskdefs/order_fulfilment.yaml")

PAID_AND_SHIPPED = """
input: {order_id: o-1, items: [{sku: a, qty: 1}]}
secrets: {SHOP_URL: "https://shop.example", SHOP_TOKEN: "token-1234567890"}
instructions:
  create_order: {status: 201, body: {total: 30}}
  confirm_payment: [{error: "HTTP 503", class: 5xx}, {status: 200, body: {}}]
calls:
  - kind: http
    url: "https://shop.example/orders/o-1"
    replies: [{status: 200, body: {status: packing}}, {status: 200, body: {status: shipped}}]
events:
  - {at: 2h, name: payment.received, correlation: o-1, data: {amount: 30, reference: r-1}}
"""


def test_a_dry_run_records_the_history_a_real_run_would():
    result = simulate(FULFILMENT, parse_script(PAID_AND_SHIPPED))
    assert (result.end, result.status, result.state) == (End.FINISHED, "succeeded", "shipped")
    assert result.path() == [("", "created", "start"), ("created", "awaiting_payment", "condition"),
                             ("awaiting_payment", "paid", "condition"),
                             ("paid", "shipped", "condition")]
    paid = result.transitions[2]
    assert paid.condition_kind == "subscribe" and paid.at - result.start == timedelta(hours=2)
    assert result.attempt_counts() == {"created/create_order": 1, "paid/confirm_payment": 2}
    (poll,) = result.polls
    assert (poll.attempts, str(poll.outcome)) == (2, "fulfilled")
    assert result.data["payment"] == {"amount": 30, "reference": "r-1"}
    assert result.data["shipment"]["body"] == {"status": "shipped"}
    assert result.consumed_events == ["1"]


def test_days_of_waiting_take_no_real_time():
    script = parse_script(PAID_AND_SHIPPED.replace("at: 2h", "at: 23h59m"))
    result = simulate(FULFILMENT, script)
    assert result.state == "shipped"
    assert result.transitions[2].at - result.start == timedelta(hours=23, minutes=59)


def test_an_instruction_without_a_scripted_result_names_itself():
    script = parse_script(PAID_AND_SHIPPED.replace("  create_order:", "  other_name:"))
    with pytest.raises(ScriptError, match="has no instruction 'other_name'"):
        simulate(FULFILMENT, script)
    script = parse_script("input: {order_id: o, items: [{sku: a, qty: 1}]}")
    with pytest.raises(Unscripted, match="instruction 'create_order' .* in state 'created'"):
        simulate(FULFILMENT, script)


def test_a_poll_without_a_scripted_result_names_itself():
    with pytest.raises(Unscripted, match="instruction 'status' .* in state 'shipping'"):
        simulate(POLLING, parse_script("{}"))


def test_an_unexpected_status_is_the_error_a_far_end_would_give():
    script = parse_script(PAID_AND_SHIPPED.replace("{status: 201, body: {total: 30}}",
                                                   "{status: 422, body: {error: no}}"))
    result = simulate(FULFILMENT, script)
    assert (result.status, result.state) == ("failed", "cancelled")
    (attempt,) = result.attempts[:1]
    assert attempt.error_class == "4xx" and "status 422 (expected 200, 201)" in attempt.error


def test_a_scripted_error_is_stored_as_the_executor_would_word_it():
    """The cluster stores a far end's failure as its executor words it (a gRPC status:
    ``rpc M on connection 'c': NOT_FOUND: ...``), with no prefix: so does a dry run."""
    error = "rpc inventory.v1.Stock/Reserve on connection 'inventory': NOT_FOUND: no sku 'X'"
    task = load_text("""
name: reserve
version: 1
start_state: reserve
states:
  reserve:
    instructions:
      - name: reserve
        rpc: {protocol: grpc, connection: inventory, method: inventory.v1.Stock/Reserve}
    transitions: [{to: done}]
  done: {final: succeeded}
""")
    result = simulate(task, script_from_data(
        {"instructions": {"reserve": {"error": error, "class": "status"}}}))
    [attempt] = result.attempts
    assert (attempt.error, attempt.error_class) == (error, "status")
    assert result.error["message"] == (
        f"instruction 'reserve' in state 'reserve' failed after 1 attempt(s): {error}")


def test_secrets_are_stand_ins_and_never_stored():
    task = load_text("""
name: echo
version: 1
start_state: call
states:
  call:
    instructions:
      - name: echo
        http: {url: "https://x.example/{{ secrets.TOKEN }}"}
        save_as: reply
    transitions: [{to: done}]
  done: {final: succeeded}
""")
    script = parse_script("""
secrets: {TOKEN: "very-secret-value"}
calls: [{kind: http, url: "*/very-secret-value", reply: {result: "echo very-secret-value"}}]
""")
    result = simulate(task, script)
    assert result.data == {"reply": "echo ***"}


def test_an_event_for_another_order_does_not_move_the_run():
    text = PAID_AND_SHIPPED.replace("correlation: o-1", "correlation: o-2").replace(
        "instructions:\n", "instructions:\n  cancel_order: {status: 200, body: {}}\n")
    result = simulate(FULFILMENT, parse_script(text))
    assert result.path()[2:] == [("awaiting_payment", "cancelling", "condition"),  # wait 1d
                                 ("cancelling", "cancelled", "condition")]
    assert result.transitions[2].at - result.start == timedelta(days=1)


def test_a_run_that_waits_for_nothing_that_comes_is_stuck():
    task = load_text("""
name: forever
version: 1
start_state: waiting
states:
  waiting:
    transitions: [{to: done, subscribe: {event: go}}]
  done: {final: succeeded}
""")
    result = simulate(task, parse_script("events: [{at: 1h, name: other}]"))
    assert (result.end, result.status, result.state) == (End.STUCK, "waiting", "waiting")
    result = simulate(task, parse_script("events: [{at: 1h, name: go}]"))
    assert (result.status, result.now - result.start) == ("succeeded", timedelta(hours=1))


def test_until_stops_a_waiting_run():
    result = simulate(FULFILMENT, parse_script(PAID_AND_SHIPPED + "until: 1h\n"))
    assert (result.end, result.status, result.state) == (End.UNTIL, "waiting",
                                                         "awaiting_payment")
    assert result.now - result.start == timedelta(hours=1)


LOOP = """
name: spin
version: 1
start_state: a
states:
  a: {transitions: [{to: b}]}
  b: {transitions: [{to: done, when: "input.stop"}, {to: a}]}
  done: {final: succeeded}
"""


def test_a_loop_with_no_exit_hits_the_transitions_bound():
    result = simulate(load_text(LOOP), parse_script("input: {stop: false}"),
                      bounds=Bounds(max_transitions=500))
    assert (result.end, result.bound) == (End.BOUND, Bound.TRANSITIONS)
    assert "loop with no exit" in result.message and result.status == "waiting"


def test_a_timer_loop_hits_the_virtual_time_and_step_bounds():
    task = load_text(LOOP.replace("a: {transitions: [{to: b}]}",
                                  "a: {transitions: [{to: b, wait: 1h}]}"))
    result = simulate(task, parse_script("{input: {stop: false}, until: 100d}"),
                      bounds=Bounds(max_virtual=timedelta(days=2), max_transitions=10_000))
    assert (result.end, result.bound) == (End.BOUND, Bound.VIRTUAL_TIME)
    result = simulate(task, parse_script("{input: {stop: false}, until: 100d}"),
                      bounds=Bounds(max_steps=5))
    assert (result.bound, result.steps) == (Bound.STEPS, 5)


def test_the_wall_time_bound_ends_a_slow_simulation():
    task = load_text(LOOP.replace("a: {transitions: [{to: b}]}",
                                  "a: {transitions: [{to: b, wait: 1s}]}"))
    result = simulate(task, parse_script("{input: {stop: false}, until: 36500d}"),
                      bounds=Bounds(max_wall_seconds=0.2, max_transitions=10**9,
                                    max_steps=10**9))
    assert (result.end, result.bound) == (End.BOUND, Bound.WALL_TIME)


def test_a_result_over_the_size_bound_fails_the_attempt_not_the_simulation():
    task = load_text("""
name: big
version: 1
start_state: call
states:
  call:
    instructions: [{name: fetch, http: {url: "https://x.example"}, save_as: r}]
    transitions: [{to: done}]
  done: {final: succeeded}
""")
    script = script_from_data({"instructions": {"fetch": {"result": "x" * 300_000}}})
    result = simulate(task, script, bounds=Bounds(max_result_bytes=100_000))
    assert result.status == "failed" and "MAX_RESULT_BYTES" in result.attempts[0].error


JITTERED = load_text("""
name: jittered
version: 1
start_state: fetch
states:
  fetch:
    instructions:
      - name: quote
        http: {url: "https://far.example/quote"}
        retry: {max_attempts: 4, initial_delay: 10m, factor: 2, max_delay: 1h}
    transitions:
      - to: watch
  watch:
    transitions:
      - to: done
        poll:
          name: status
          http: {url: "https://far.example/status"}
          every: 10m
          backoff: {factor: 2}
          until: "result.body.ready"
  done: {final: succeeded}
""")
JITTER_REPLIES = {"quote": [{"error": "down", "class": "connection"}] * 3 + [{"result": 1}],
                  "status": [{"status": 200, "body": {"ready": False}}] * 3
                  + [{"status": 200, "body": {"ready": True}}]}


def _times(seed: int | None) -> list[float | None]:
    data: dict = {"instructions": JITTER_REPLIES}
    if seed is not None:
        data["seed"] = seed
    result = simulate(JITTERED, script_from_data(data))
    assert result.status == "succeeded"
    return [result.offset(t.at) for t in result.transitions] + [
        result.offset(a.started_at) for a in result.attempts]


def test_jittered_delays_are_drawn_from_the_scripts_seed():
    """The same script gives the same times, however often it is played; another seed draws
    other delays (all within the policy's equal-jitter bounds)."""
    assert _times(None) == _times(None) == _times(0)
    assert _times(7) == _times(7)
    assert _times(7) != _times(0)
    played = simulate(JITTERED, script_from_data({"instructions": JITTER_REPLIES, "seed": 3}))
    first_retry = played.attempts[1].started_at - played.attempts[0].started_at
    assert timedelta(minutes=5) <= first_retry <= timedelta(minutes=10)


# ---------------------------------------------------------------------------- hostile scripts


@pytest.mark.parametrize(("text", "message"), [
    ("x" * 2_000_000, "the file is too big"),
    ("[" * 5_000 + "]" * 5_000, "deep"),
    ("a: &a [*a]", "alias"),
    ("bogus: 1", "unknown key 'bogus' in a script"),
    ("until: forever", "until (virtual time after the start): bad duration"),
    ("instructions: {x: {result: 1, error: no}}", "exactly one of result"),
    ("instructions: {x: {error: no, class: nope}}", "unknown error class 'nope'"),
    ("instructions: {x: {status: 999}}", "HTTP status code"),
    ("events: [{at: 1h}]", "an event needs a name"),
    ("calls: [{kind: http}]", "reply (one) or replies"),
    ("expect: {status: great}", "unknown status 'great'"),
    ("expect: {status: [1]}", "unknown status '[1]'"),
    ("instructions: {x: {error: no, class: [a]}}", "unknown error class"),
    ("seed: -1", "seed must be a whole number"),
    ("seed: 1.5", "seed must be a whole number"),
    ("seed: true", "seed must be a whole number"),
    ("seed: 99999999999999999999", "is too large"),
])
def test_hostile_and_broken_scripts_end_in_clear_problems(text, message):
    with pytest.raises(ScriptError) as raised:
        parse_script(text, "s.yaml")
    assert message in str(raised.value)


def test_a_problem_names_its_line_and_path():
    with pytest.raises(ScriptError) as raised:
        parse_script("input: {}\nevents:\n  - {at: soon, name: x}\n", "s.yaml")
    (problem,) = raised.value.problems
    assert (problem.line, problem.path) == (3, "events[0].at")


def test_a_deep_json_script_is_refused():
    deep: dict = {}
    node = deep
    for _ in range(200):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ScriptError, match="nested deeper"):
        script_from_data({"input": deep})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(
                        ["input", "until", "instructions", "calls", "events", "expect",
                         "result", "status", "error", "class", "at", "name", "kind", "url",
                         "reply", "replies", "x"]), inner, max_size=4), max_leaves=20))
def test_any_json_is_a_script_or_script_problems(data):
    try:
        script_from_data(data)
    except ScriptError as exc:
        assert exc.problems


# ---------------------------------------------------------------------------- properties

POLLING = load_text("""
name: polling
version: 1
start_state: shipping
states:
  shipping:
    transitions:
      - to: shipped
        poll:
          name: status
          http: {url: "https://x.example/status"}
          every: 1m
          until: "result.body.state == 'shipped'"
          max_attempts: 6
          on_error: lost
  shipped: {final: succeeded}
  lost: {final: failed}
""")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["packing", "shipped", "error"]), min_size=1, max_size=8))
def test_a_poll_takes_the_first_attempt_that_holds_or_gives_up_after_its_maximum(answers):
    replies = [{"error": "down", "class": "5xx"} if a == "error"
               else {"status": 200, "body": {"state": a}} for a in answers]
    result = simulate(POLLING, script_from_data({"instructions": {"status": replies}}))
    padded = answers + [answers[-1]] * 6
    first = next((i + 1 for i, a in enumerate(padded[:6]) if a == "shipped"), None)
    (poll,) = result.polls
    if first is None:
        assert (result.state, poll.attempts, str(poll.outcome)) == ("lost", 6, "exhausted")
    else:
        assert (result.state, poll.attempts) == ("shipped", first)
        assert result.now - result.start == timedelta(minutes=first - 1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5 * 86400), min_size=1, max_size=5))
def test_the_earliest_matching_payment_wins_the_race_with_the_one_day_wait(offsets):
    events = [{"at": f"{s}s", "name": "payment.received", "correlation": "o-1",
               "data": {"amount": 30, "reference": f"r{s}"}} for s in offsets]
    script = script_from_data({
        "input": {"order_id": "o-1", "items": [{"sku": "a", "qty": 1}]},
        "instructions": {"create_order": {"status": 201, "body": {"total": 30}},
                         "confirm_payment": {"status": 200, "body": {}},
                         "cancel_order": {"status": 200, "body": {}}},
        "calls": [{"kind": "http", "reply": {"status": 200, "body": {"status": "shipped"}}}],
        "events": events})
    result = simulate(FULFILMENT, script)
    earliest = min(offsets)
    if earliest <= 86400:
        assert result.state == "shipped"
        assert result.data["payment"]["reference"] == f"r{earliest}"
    else:
        assert result.state == "cancelled"


def test_expect_compares_status_state_error_and_part_of_the_data():
    result = simulate(FULFILMENT, parse_script(PAID_AND_SHIPPED))
    good = parse_script("expect: {status: succeeded, state: shipped, "
                        "data: {payment: {amount: 30}}}").expect
    assert mismatches(good, result) == []
    bad = parse_script("expect: {status: failed, data: {payment: {amount: 31}, x: 1}}").expect
    assert mismatches(bad, result) == [
        "status: expected failed, got succeeded (the run succeeded)",
        "data.payment.amount: expected 31, got 30", "data.x: expected 1, missing"]
