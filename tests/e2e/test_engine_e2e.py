"""The engine end to end: the real cluster, the real database, a real HTTP far end.

Each scenario starts runs through the service layer (as the API will), lets the cluster's
workers and timer drive them, and checks the committed history.
"""

from __future__ import annotations

import time

import pytest

from taskapp import models
from taskapp.services import event_send, run_cancel, run_redrive, run_start
from tests.e2e.conftest import path_of, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ORDER = """
name: e2e_order
version: 1
start_state: price
states:
  price:
    instructions:
      - http: {url: "{{ secrets.FAR_END }}/price", method: POST, json: {id: "{{ input.id }}"}}
        save_as: quote
    transitions:
      - to: big
        when: "data.quote.body.amount > 100"
      - to: small
  big:
    transitions:
      - to: done
        wait: 1s
  small:
    transitions:
      - to: done
  done: {final: succeeded}
"""


def test_linear_flow_with_branching_on_an_instruction_result(cluster, far_end, load):
    far_end.route("/price", lambda n, r: (200, {"amount": 150 if "big" in r["body"] else 5}, 0))
    load(ORDER)
    big, _ = run_start(task="e2e_order", input={"id": "big-1"})
    small, _ = run_start(task="e2e_order", input={"id": "small-1"})
    big, small = wait_for(big.pk), wait_for(small.pk)
    assert big.status == small.status == "succeeded"
    assert path_of(big) == [("", "price", "start"), ("price", "big", "condition"),
                            ("big", "done", "condition")]
    assert path_of(small) == [("", "price", "start"), ("price", "small", "condition"),
                              ("small", "done", "condition")]
    waited = models.Transition.objects.get(run=big, to_state="done")
    assert waited.condition_kind == "wait" and waited.time_in_state >= 1.0
    headers = far_end.requests["/price"][0]["headers"]
    assert headers["Idempotency-Key"].startswith(f"{big.pk}:1:") or headers[
        "Idempotency-Key"].startswith(f"{small.pk}:1:")


POLL = """
name: e2e_poll
version: 1
start_state: shipping
states:
  shipping:
    transitions:
      - to: shipped
        poll:
          http: {url: "{{ secrets.FAR_END }}/status"}
          every: 200ms
          until: "result.body.state == 'shipped'"
          max_attempts: 5
          on_error: lost
  shipped: {final: succeeded}
  lost: {final: failed}
"""


def test_poll_succeeds_after_n_attempts(cluster, far_end, load):
    far_end.route("/status", lambda n, r: (200, {"state": "shipped" if n >= 3 else "packing"}, 0))
    load(POLL)
    run, _ = run_start(task="e2e_poll")
    run = wait_for(run.pk)
    assert (run.status, run.state) == ("succeeded", "shipped")
    (poll,) = models.PollRecord.objects.filter(run=run)
    assert (poll.attempts, poll.outcome) == (3, "fulfilled")
    assert far_end.calls["/status"] == 3


def test_poll_exhausting_its_attempts_goes_to_on_error(cluster, far_end, load):
    far_end.route("/status", lambda n, r: (200, {"state": "packing"}, 0))
    load(POLL)
    run, _ = run_start(task="e2e_poll")
    run = wait_for(run.pk)
    assert (run.status, run.state) == ("failed", "lost")
    assert path_of(run)[-1] == ("shipping", "lost", "error")
    assert models.PollRecord.objects.get(run=run).attempts == 5 == far_end.calls["/status"]


PAYMENT = """
name: e2e_payment
version: 1
start_state: setup
states:
  setup:
    transitions:
      - to: awaiting
        wait: 1s
  awaiting:
    transitions:
      - to: paid
        subscribe:
          event: payment.received
          correlate: "{{ input.order }}"
          save_as: payment
      - to: shipped_anyway
        poll:
          http: {url: "{{ secrets.FAR_END }}/status"}
          every: 300ms
          until: "result.body.state == 'shipped'"
      - to: expired
        wait: 20s
  paid: {final: succeeded}
  shipped_anyway: {final: succeeded}
  expired: {final: failed}
"""


def test_subscribe_event_before_and_after_the_state_and_a_duplicate(cluster, far_end, load):
    far_end.route("/status", lambda n, r: (200, {"state": "packing"}, 0))
    load(PAYMENT)
    early, _ = run_start(task="e2e_payment", input={"order": "early"})
    late, _ = run_start(task="e2e_payment", input={"order": "late"})
    event_send(name="payment.received", correlation="early", payload={"n": 1}, key="ev-early")
    wait_for(late.pk, state="awaiting", timeout=10)
    time.sleep(0.5)  # the poll is racing now
    event_send(name="payment.received", correlation="late", payload={"n": 2}, key="ev-late")
    _, again = event_send(name="payment.received", correlation="late", payload={"n": 3},
                          key="ev-late")
    assert not again
    early, late = wait_for(early.pk), wait_for(late.pk)
    assert (early.state, early.data["payment"]) == ("paid", {"n": 1})
    assert (late.state, late.data["payment"]) == ("paid", {"n": 2})
    loser = models.PollRecord.objects.get(run=late)
    assert loser.outcome == "cancelled" and loser.attempts >= 1
    assert models.Event.objects.count() == 2


def test_racing_conditions_the_poll_wins_and_the_subscription_is_dropped(cluster, far_end, load):
    far_end.route("/status", lambda n, r: (200, {"state": "shipped" if n >= 2 else "packing"}, 0))
    load(PAYMENT)
    run, _ = run_start(task="e2e_payment", input={"order": "p1"})
    run = wait_for(run.pk)
    assert run.state == "shipped_anyway"
    assert not models.Subscription.objects.filter(run=run).exists()
    event_send(name="payment.received", correlation="p1", key="too-late")
    assert not models.EventConsumption.objects.filter(run=run).exists()


TIMEOUTS = """
name: e2e_timeouts
version: 1
start_state: waiting
states:
  waiting:
    timeout: 1s
    {on_timeout}
    transitions:
      - to: done
        subscribe: never.sent
  done: {{final: succeeded}}
  rescued: {{final: succeeded}}
"""


def test_transition_timeout_times_the_run_out(cluster, far_end, load):
    load(TIMEOUTS.format(on_timeout="").replace("  rescued: {final: succeeded}\n", ""))
    run, _ = run_start(task="e2e_timeouts")
    run = wait_for(run.pk)
    assert (run.status, run.state, run.error["code"]) == ("timed_out", "waiting",
                                                         "state_timeout")
    assert path_of(run)[-1] == ("waiting", "", "timeout")


def test_on_timeout_routes_the_run(cluster, far_end, load):
    load(TIMEOUTS.format(on_timeout="on_timeout: rescued"))
    run, _ = run_start(task="e2e_timeouts")
    run = wait_for(run.pk)
    assert (run.status, run.state) == ("succeeded", "rescued")


RETRY = """
name: e2e_retry
version: 1
start_state: charge
states:
  charge:
    instructions:
      - name: charge
        http: {url: "{{ secrets.FAR_END }}/charge", method: POST}
        retry: {max_attempts: 3, initial_delay: 100ms, factor: 15, jitter: false}
        on_error: refund
    transitions:
      - to: done
  done: {final: succeeded}
  refund: {final: failed}
"""


def test_instruction_retries_then_on_error(cluster, far_end, load):
    far_end.route("/charge", lambda n, r: (503, {"error": "busy"}, 0))
    load(RETRY)
    run, _ = run_start(task="e2e_retry")
    run = wait_for(run.pk)
    assert (run.status, run.state) == ("failed", "refund")
    attempts = list(models.InstructionAttempt.objects.filter(run=run)
                    .values_list("attempt", "ok", "error_class"))
    assert attempts == [(1, False, "5xx"), (2, False, "5xx"), (3, False, "5xx")]
    keys = {r["headers"]["Idempotency-Key"] for r in far_end.requests["/charge"]}
    assert keys == {f"{run.pk}:1:charge"}


def test_cancel_a_waiting_run_then_redrive_it(cluster, far_end, load):
    far_end.route("/status", lambda n, r: (200, {"state": "packing"}, 0))
    load(PAYMENT)
    run, _ = run_start(task="e2e_payment", input={"order": "c1"})
    wait_for(run.pk, state="awaiting", timeout=10)
    run_cancel(run_id=run.pk)
    run = wait_for(run.pk)
    assert run.status == "cancelled"
    run_redrive(run_id=run.pk)
    wait_for(run.pk, {"waiting", "running"}, timeout=5)
    event_send(name="payment.received", correlation="c1", payload={"ok": True})
    run = wait_for(run.pk)
    assert (run.status, run.state) == ("succeeded", "paid")
    assert [t[2] for t in path_of(run)] == ["start", "condition", "cancel", "redrive",
                                            "condition"]


CRASH = """
name: e2e_crash
version: 1
start_state: one
states:
  one:
    transitions:
      - to: slow
  slow:
    instructions:
      - name: slow_call
        http: {url: "{{ secrets.FAR_END }}/slow"}
        timeout: 20s
    transitions:
      - to: three
  three:
    transitions:
      - to: done
        wait: 500ms
  done: {final: succeeded}
"""


def test_sigkill_mid_run_and_the_run_completes_with_every_transition_once(
        cluster, far_end, load):
    far_end.route("/slow", lambda n, r: (200, {"call": n}, 4.0 if n == 1 else 0))
    load(CRASH)
    run, _ = run_start(task="e2e_crash")
    deadline = time.monotonic() + 15
    while far_end.calls["/slow"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert far_end.calls["/slow"] == 1, "the slow call never started"
    cluster.kill()  # every process of the cluster, mid-instruction
    killed = models.Run.objects.get(pk=run.pk)
    assert killed.state == "slow" and killed.lease_owner
    cluster.start()
    run = wait_for(run.pk, timeout=40)
    assert run.status == "succeeded"
    assert path_of(run) == [("", "one", "start"), ("one", "slow", "condition"),
                            ("slow", "three", "condition"), ("three", "done", "condition")]
    seqs = list(models.Transition.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == [1, 2, 3, 4]
    # At least once: the interrupted call was made again, with the same idempotency key.
    keys = [r["headers"]["Idempotency-Key"] for r in far_end.requests["/slow"]]
    assert len(keys) == 2 and len(set(keys)) == 1
