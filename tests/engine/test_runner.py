"""The run loop, on an in-memory store and a fake clock: no database, no threads waiting."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from engine import instructions
from engine.errors import LeaseLost
from engine.runner import EngineSettings, Runner, prepare_redrive
from engine.runs import EventRecord, RunStatus, Trigger
from tests.engine.fakes import ScriptedHttp, fail, new_run, ok

POOL = ThreadPoolExecutor(max_workers=4)


@pytest.fixture
def runner(store, clock):
    return Runner(store=store, clock=clock, pool=POOL,
                  settings=EngineSettings(inline_retry_max_seconds=1.0))


@pytest.fixture
def http():
    original = instructions.executor_for("http")
    fake = ScriptedHttp([ok({})])
    instructions.register(fake, replace=True)
    yield fake
    instructions.register(original, replace=True)


LINEAR = """
name: linear
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {greeting: "Hello {{ input.name }}"}
    transitions:
      - to: b
  b:
    instructions:
      - set: {count: 2}
    transitions:
      - to: done
  done: {final: succeeded}
"""


def test_linear_flow_runs_to_the_end_in_one_step(runner, store, clock):
    run = new_run(LINEAR, clock.now(), input={"name": "Ada"})
    outcome = runner.advance(run)
    assert outcome.finished and outcome.wake_at is None
    assert run.status is RunStatus.SUCCEEDED
    assert run.data == {"greeting": "Hello Ada", "count": 2}
    assert store.path() == [(None, "a", "start"), ("a", "b", "condition"),
                            ("b", "done", "condition")]
    assert [a.instruction for a in store.attempts] == ["set_0", "set_0"]
    assert run.metrics["transitions"] == 2 and run.finished_at == clock.now()


BRANCH = """
name: branch
version: 1
start_state: check
states:
  check:
    instructions:
      - http: {url: "http://127.0.0.1:1/price"}
        save_as: price
    transitions:
      - to: expensive
        when: "data.price.body.amount > 100"
      - to: cheap
  expensive: {final: succeeded}
  cheap: {final: succeeded}
"""


@pytest.mark.parametrize(("amount", "end"), [(150, "expensive"), (50, "cheap")])
def test_branching_on_an_instruction_result(runner, store, clock, http, amount, end):
    http.answers = [ok({"amount": amount})]
    run = new_run(BRANCH, clock.now())
    runner.advance(run)
    assert run.state == end and run.status is RunStatus.SUCCEEDED
    assert store.transitions[-1].condition_kind == ("when" if end == "expensive" else "always")


WAIT = """
name: waiting
version: 1
start_state: a
states:
  a:
    transitions:
      - to: done
        wait: 10m
  done: {final: succeeded}
"""


def test_wait_parks_the_run_until_due_then_fires(runner, store, clock):
    run = new_run(WAIT, clock.now())
    entered = clock.now()
    outcome = runner.advance(run)
    assert not outcome.finished and outcome.wake_at == entered + timedelta(minutes=10)
    clock.advance(599)
    assert runner.advance(run).wake_at == entered + timedelta(minutes=10)
    clock.advance(5)  # woken 4 s late: the wait still counts as fulfilled at its due time
    assert runner.advance(run).finished
    assert store.transitions[-1].detail["due"] == (entered + timedelta(minutes=10)).isoformat()


POLL = """
name: polling
version: 1
start_state: a
states:
  a:
    transitions:
      - to: shipped
        poll:
          http: {url: "http://127.0.0.1:1/status"}
          every: 30s
          until: "result.body.state == 'shipped'"
          max_attempts: 4
          save_as: shipment
          on_error: lost
  shipped: {final: succeeded}
  lost: {final: failed}
"""


def test_poll_succeeds_after_n_attempts_with_one_aggregated_record(runner, store, clock, http):
    http.answers = [ok({"state": "packing"}), fail("5xx"), ok({"state": "shipped"})]
    run = new_run(POLL, clock.now())
    first = runner.advance(run)
    assert first.wake_at == clock.now() + timedelta(seconds=30)
    clock.advance(30)
    runner.advance(run)
    clock.advance(30)
    assert runner.advance(run).finished
    assert run.state == "shipped" and run.data["shipment"]["body"]["state"] == "shipped"
    (record,) = store.polls.values()
    assert (record.attempts, record.outcome) == (3, "fulfilled")
    keys = [ctx.idempotency_key for _, ctx in http.calls]
    assert len(set(keys)) == 3  # each poll attempt is its own request


def test_poll_exhausting_its_attempts_follows_on_error(runner, store, clock, http):
    http.answers = [ok({"state": "packing"})]
    run = new_run(POLL, clock.now())
    for _ in range(4):
        runner.advance(run)
        clock.advance(30)
    assert run.state == "lost" and run.status is RunStatus.FAILED
    assert store.transitions[-1].trigger is Trigger.ERROR
    assert store.transitions[-1].detail["attempts"] == 4
    (record,) = store.polls.values()
    assert (record.attempts, record.outcome) == (4, "exhausted")


SUBSCRIBE = """
name: payment
version: 1
start_state: awaiting
states:
  awaiting:
    transitions:
      - to: paid
        subscribe:
          event: payment.received
          correlate: "{{ input.order }}"
          match: "event.amount >= 10"
          save_as: payment
      - to: expired
        wait: 1h
  paid: {final: succeeded}
  expired: {final: failed}
"""


def _event(id_: str, amount: int, at, correlation="A1"):
    return EventRecord(id=id_, name="payment.received", payload={"amount": amount},
                       received_at=at, correlation=correlation)


def test_subscribe_with_the_event_already_buffered(runner, store, clock):
    store.events.append(_event("1", 20, clock.now() - timedelta(seconds=5)))
    run = new_run(SUBSCRIBE, clock.now(), input={"order": "A1"})
    runner.advance(run)
    assert run.state == "paid" and run.data["payment"] == {"amount": 20}
    assert store.consumed == ["1"]


def test_subscribe_event_arriving_later_wins_the_race_and_the_wait_is_dropped(
        runner, store, clock):
    run = new_run(SUBSCRIBE, clock.now(), input={"order": "A1"})
    outcome = runner.advance(run)
    assert outcome.wake_at == clock.now() + timedelta(hours=1)
    assert [(s.event, s.correlation) for s in store.subscriptions] == [("payment.received", "A1")]
    clock.advance(60)
    store.events += [_event("1", 5, clock.now()), _event("2", 50, clock.now(), "B2"),
                     _event("3", 12, clock.now())]
    runner.advance(run)
    assert run.state == "paid" and run.data["payment"] == {"amount": 12}
    assert store.consumed == ["3"]  # too small, wrong correlation: not taken
    assert store.subscriptions == []  # the race is over: subscriptions removed


def test_the_race_goes_to_the_condition_fulfilled_first(runner, store, clock):
    run = new_run(SUBSCRIBE, clock.now(), input={"order": "A1"})
    runner.advance(run)
    clock.advance(3600 + 30)  # the run was woken late; the event came after the wait's due
    store.events.append(_event("1", 20, clock.now() - timedelta(seconds=10)))
    runner.advance(run)
    assert run.state == "expired" and store.consumed == []


TIMEOUT = """
name: timeouts
version: 1
start_state: a
max_global_transition_timeout: 5m
states:
  a:
    transitions:
      - to: done
        wait: 10m
  done: {final: succeeded}
"""

ON_TIMEOUT = """
name: timeouts
version: 1
start_state: b
states:
  b:
    timeout: 10s
    on_timeout: rescued
    transitions:
      - to: done
        subscribe: never
  done: {final: succeeded}
  rescued: {final: succeeded}
"""


def test_transition_timeout_times_the_run_out(runner, store, clock):
    run = new_run(TIMEOUT, clock.now())
    assert runner.advance(run).wake_at == clock.now() + timedelta(minutes=5)
    clock.advance(300)
    runner.advance(run)
    assert run.status is RunStatus.TIMED_OUT and run.state == "a"
    assert store.transitions[-1].trigger is Trigger.TIMEOUT
    assert run.error["code"] == "state_timeout"


def test_on_timeout_routes_the_timeout(runner, store, clock):
    run = new_run(ON_TIMEOUT, clock.now())
    runner.advance(run)
    clock.advance(10)
    runner.advance(run)
    assert run.state == "rescued" and run.status is RunStatus.SUCCEEDED
    assert store.path()[-1] == ("b", "rescued", "timeout")


def test_a_condition_due_exactly_at_the_timeout_wins(runner, store, clock):
    text = TIMEOUT.replace("wait: 10m", "wait: 5m")
    run = new_run(text, clock.now())
    runner.advance(run)
    clock.advance(301)
    runner.advance(run)
    assert run.state == "done" and run.status is RunStatus.SUCCEEDED


RETRY = """
name: retrying
version: 1
start_state: call
states:
  call:
    instructions:
      - name: charge
        http: {url: "http://127.0.0.1:1/charge", method: POST}
        retry: {max_attempts: 3, initial_delay: 10s, jitter: false}
        on_error: refund
    transitions:
      - to: done
  done: {final: succeeded}
  refund: {final: failed}
"""


def test_retries_park_the_run_then_on_error(runner, store, clock, http):
    http.answers = [fail("5xx")]
    run = new_run(RETRY, clock.now())
    assert runner.advance(run).wake_at == clock.now() + timedelta(seconds=10)
    clock.advance(10)
    assert runner.advance(run).wake_at == clock.now() + timedelta(seconds=20)
    clock.advance(20)
    runner.advance(run)
    assert run.state == "refund" and run.status is RunStatus.FAILED
    assert [(a.attempt, a.ok) for a in store.attempts] == [(1, False), (2, False), (3, False)]
    keys = {ctx.idempotency_key for _, ctx in http.calls}
    assert keys == {"run-1:1:charge"}  # one key for every attempt of the instruction
    assert store.transitions[-1].detail["attempts"] == 3


def _without_on_error(text: str) -> str:
    return text.replace("        on_error: refund\n", "").replace("  refund: {final: failed}\n", "")


def test_a_non_retryable_error_fails_at_once(runner, store, clock, http):
    http.answers = [fail("4xx", "HTTP 404")]
    run = new_run(_without_on_error(RETRY), clock.now())
    runner.advance(run)
    assert run.status is RunStatus.FAILED and run.state == "call"
    assert len(store.attempts) == 1 and "HTTP 404" in run.error["message"]


def test_short_retry_delays_are_slept_inline(runner, store, clock, http):
    http.answers = [fail("5xx"), ok({})]
    run = new_run(RETRY.replace("initial_delay: 10s", "initial_delay: 200ms"), clock.now())
    assert runner.advance(run).finished and run.state == "done"


def test_cancel_requested_ends_the_run(runner, store, clock):
    run = new_run(WAIT, clock.now())
    runner.advance(run)
    run.cancel_requested = True
    runner.advance(run)
    assert run.status is RunStatus.CANCELLED
    assert store.path()[-1] == ("a", None, "cancel")


def test_redrive_resumes_from_the_failed_state_keeping_data(runner, store, clock, http):
    http.answers = [fail("4xx")]
    run = new_run(_without_on_error(RETRY), clock.now())
    run.data = {"kept": True}
    runner.advance(run)
    assert run.status is RunStatus.FAILED
    http.answers = [ok({})]
    record = prepare_redrive(run, "call", clock.now())
    assert record.trigger is Trigger.REDRIVE and run.status is RunStatus.RUNNING
    runner.advance(run)
    assert run.status is RunStatus.SUCCEEDED and run.data["kept"] is True


def test_the_run_deadline_times_it_out(runner, store, clock):
    run = new_run(WAIT, clock.now(), deadline_at=clock.now() + timedelta(minutes=1))
    assert runner.advance(run).wake_at == clock.now() + timedelta(minutes=1)
    clock.advance(60)
    runner.advance(run)
    assert run.status is RunStatus.TIMED_OUT and store.path()[-1][2] == "deadline"


def test_a_lost_lease_stops_the_step(runner, store, clock):
    run = new_run(WAIT, clock.now())
    store.lost = True
    with pytest.raises(LeaseLost):
        runner.advance(run)
    assert store.transitions == []


LOOP = """
name: looping
version: 1
start_state: a
states:
  a:
    instructions:
      - set: {n: "{{ (data.n | default(0)) + 1 }}"}
    transitions:
      - to: done
        when: "data.n >= 50"
      - to: a
  done: {final: succeeded}
"""


def test_a_step_yields_after_its_transition_budget(store, clock):
    runner = Runner(store=store, clock=clock, pool=POOL,
                    settings=EngineSettings(step_max_transitions=10))
    run = new_run(LOOP, clock.now())
    outcome = runner.advance(run)
    assert not outcome.finished and outcome.wake_at == clock.now()
    while not runner.advance(run).finished:
        pass
    assert run.data["n"] == 50 and len(store.transitions) == 51


def test_secrets_never_reach_history(runner, store, clock, http, monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_SECRET_TOKEN", "s3cr3t-value")
    http.answers = [lambda spec, ctx: {"echo": ctx.render("Bearer {{ secrets.TOKEN }}")}]
    text = BRANCH.replace('save_as: price', 'save_as: price').replace(
        "when: \"data.price.body.amount > 100\"", "when: \"false\"")
    run = new_run(text, clock.now())
    runner.advance(run)
    assert run.data["price"] == {"echo": "Bearer ***"}


def test_values_derived_from_secrets_and_echoed_back_are_redacted(
        runner, store, clock, http, monkeypatch):
    monkeypatch.setenv("ASYNC_STATES_SECRET_TOKEN", "s3cr3t-value")
    http.answers = [lambda spec, ctx: {
        "reversed": ctx.render("id={{ secrets.TOKEN | reverse }}&n={{ input.n }}"),
        "slice": ctx.render({"h": ["{{ secrets.TOKEN[2:10] }}"]})["h"][0],
        "short": ctx.render("{{ secrets.TOKEN[:4] }}")}]
    text = BRANCH.replace("when: \"data.price.body.amount > 100\"", "when: \"false\"")
    run = new_run(text, clock.now(), input={"n": 12})
    runner.advance(run)
    # Pieces of 8 characters or more are redacted in every form; shorter ones cannot be.
    assert run.data["price"] == {"reversed": "id=***&n=12", "slice": "***", "short": "s3cr"}


def test_a_when_declared_first_beats_an_unconditional_transition_checked_later(
        runner, store, clock, http):
    def slow(spec, ctx):
        clock.advance(2)  # the instruction takes time: entry and race start differ
        return {"status": 200, "body": {"amount": 150}, "headers": {}}

    http.answers = [slow]
    run = new_run(BRANCH, clock.now())
    runner.advance(run)
    assert run.state == "expensive"


def test_a_chain_of_pure_transitions_is_committed_once(runner, store, clock):
    run = new_run(LINEAR, clock.now(), input={"name": "Ada"})
    runner.advance(run)
    assert store.commits == 1 and len(store.transitions) == 3


def test_the_far_end_is_called_only_once_the_way_there_is_committed(
        runner, store, clock, http):
    seen = []

    def answer(spec, ctx):
        seen.append((store.saved.state, [t.to_state for t in store.transitions]))
        return {"status": 200, "body": {"amount": 5}, "headers": {}}

    http.answers = [answer]
    runner.advance(new_run(BRANCH, clock.now()))
    assert seen == [("check", ["check"])]
    assert [t.to_state for t in store.transitions] == ["check", "cheap"]


def test_subscriptions_are_committed_before_events_are_looked_for(runner, store, clock):
    looked = []
    original = store.events_for

    def events_for(run, subscription):
        looked.append(list(store.subscriptions))
        return original(run, subscription)

    store.events_for = events_for
    runner.advance(new_run(SUBSCRIBE, clock.now(), input={"order": "A1"}))
    assert looked and looked[0] == store.subscriptions != []


THREE_CALLS = """
name: three_calls
version: 1
start_state: calls
states:
  calls:
    instructions:
      - {name: one, http: {url: "http://127.0.0.1:1/1"}, save_as: one}
      - {name: two, http: {url: "http://127.0.0.1:1/2"}, save_as: two}
      - {name: three, http: {url: "http://127.0.0.1:1/3"}, save_as: three}
    transitions:
      - to: done
  done: {final: succeeded}
"""


def test_each_result_is_committed_before_the_next_call_one_commit_a_call(
        runner, store, clock, http):
    committed_before_call = []

    def answer(spec, ctx):
        committed_before_call.append(sorted(store.saved.data))
        return {"status": 200, "body": spec.url[-1], "headers": {}}

    http.answers = [answer]
    run = new_run(THREE_CALLS, clock.now())
    runner.advance(run)
    assert committed_before_call == [[], ["one"], ["one", "two"]]
    assert store.commits == 4  # before each call, and the step's last (with the release)
    assert run.data["three"]["body"] == "3"


def test_each_call_is_made_outside_the_store_with_its_way_committed(
        runner, store, clock, http):
    """The store may lend its database connection during a call (``RunStore.outside``):
    only once everything before it is committed, and never across a commit."""
    during = []

    def answer(spec, ctx):
        during.append((store.away, store.commits))
        return {"status": 200, "body": {}, "headers": {}}

    http.answers = [answer]
    runner.advance(new_run(THREE_CALLS, clock.now()))
    assert during == [(True, 1), (True, 2), (True, 3)]
    assert store.outside_entered == 3 and not store.away


WHEN_ON_MISSING_KEY = """
name: when_missing
version: 1
start_state: a
states:
  a:
    transitions:
      - to: done
        when: "input.ok"
      - to: done
        wait: 1h
  done: {final: succeeded}
"""


def test_a_predicate_failing_when_checked_fails_the_run_instead_of_crashing_the_step(
        runner, store, clock):
    run = new_run(WHEN_ON_MISSING_KEY, clock.now(), input={})
    outcome = runner.advance(run)
    assert outcome.finished and run.status is RunStatus.FAILED
    assert "checking the conditions of state 'a' failed" in run.error["message"]
    assert "ok" in run.error["message"]
