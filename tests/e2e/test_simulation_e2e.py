"""A dry run and the real cluster, given the same world, record the same history: the same
path, the same data, the same attempt counts, and times within the timer's lag.

The far end answers each call as the script's reply for that call number says; the dry
run reads the same script. Both run the same task file.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.language import load_text
from engine.simulation import parse_script, script_from_data, simulate
from taskapp import models
from taskapp.services import event_send, run_start
from tests.e2e.conftest import path_of, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# The timer's lag, and a worker's pick-up, on a loaded 2-core machine: real times may be
# this much later than the virtual ones.
LAG_SECONDS = 3.0

ORDER = """
name: sim_order
version: 1
start_state: price
states:
  price:
    instructions:
      - name: quote
        http: {url: "{{ secrets.FAR_END }}/quote", method: POST, json: {id: "{{ input.id }}"}}
        retry: {max_attempts: 3, initial_delay: 300ms, jitter: false}
        save_as: quote
    transitions:
      - to: big
        when: "data.quote.body.amount > 100"
      - to: small
  big:
    instructions:
      - set: {label: "big {{ data.quote.body.amount }}"}
    transitions:
      - to: done
        wait: 1s
  small:
    transitions: [{to: done}]
  done: {final: succeeded}
"""
ORDER_REPLIES = {"quote": [{"status": 503, "body": {"error": "busy"}},
                           {"status": 200, "body": {"amount": 150}}]}

SHIPPING = """
name: sim_shipping
version: 1
start_state: shipping
states:
  shipping:
    transitions:
      - to: shipped
        poll:
          name: status
          http: {url: "{{ secrets.FAR_END }}/status"}
          every: 300ms
          until: "result.body.state == 'shipped'"
          max_attempts: 6
          save_as: shipment
          on_error: lost
  shipped: {final: succeeded}
  lost: {final: failed}
"""
SHIPPING_REPLIES = {"status": [{"status": 200, "body": {"state": "packing"}},
                               {"status": 200, "body": {"state": "packing"}},
                               {"status": 200, "body": {"state": "shipped"}}]}

PAYMENT = """
name: sim_payment
version: 1
start_state: awaiting
states:
  awaiting:
    timeout: 20s
    on_timeout: expired
    transitions:
      - to: paid
        subscribe: {event: paid, correlate: "{{ input.order }}", save_as: payment,
                    match: "event.amount >= 10"}
  paid: {final: succeeded}
  expired: {final: failed}
"""


def _route(far_end, path: str, replies: list[dict]) -> None:
    """The far end answers call n with reply n (the last repeats), as a script does."""
    def handler(n: int, request: dict) -> tuple[int, object, float]:
        reply = replies[min(n, len(replies)) - 1]
        return reply["status"], reply["body"], 0
    far_end.route(path, handler)


def _attempts(run: models.Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in models.InstructionAttempt.objects.filter(run=run):
        counts[f"{a.state}/{a.instruction}"] = counts.get(f"{a.state}/{a.instruction}", 0) + 1
    return counts


def _steady(value):
    """Data without what a real HTTP exchange adds that no script says: the server's headers
    and the time it took."""
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if k not in ("headers", "elapsed_ms")}
    return value


def _same_history(run: models.Run, dry, *, time_in_state: bool = True) -> None:
    assert (run.status, run.state) == (dry.status, dry.state)
    assert path_of(run) == dry.path()
    assert _steady(run.data) == _steady(dry.data)
    assert _attempts(run) == dry.attempt_counts()
    real_polls = [(p.state, p.attempts, p.outcome) for p in models.PollRecord.objects.filter(
        run=run).order_by("entry", "transition_index")]
    assert real_polls == [(p.state, p.attempts, str(p.outcome)) for p in dry.polls]
    if time_in_state:
        real = models.Transition.objects.filter(run=run).order_by("seq")
        for mine, theirs in zip(real, dry.transitions, strict=True):
            assert theirs.time_in_state <= mine.time_in_state + 0.05
            assert mine.time_in_state - theirs.time_in_state < LAG_SECONDS


def test_retries_branches_waits_and_polls_match_the_dry_run(cluster, far_end, load):
    _route(far_end, "/quote", ORDER_REPLIES["quote"])
    _route(far_end, "/status", SHIPPING_REPLIES["status"])
    load(ORDER)
    load(SHIPPING)
    order, _ = run_start(task="sim_order", input={"id": "o-1"})
    shipping, _ = run_start(task="sim_shipping")
    order, shipping = wait_for(order.pk), wait_for(shipping.pk)
    secrets = {"FAR_END": far_end.url}
    dry_order = simulate(load_text(ORDER), script_from_data(
        {"input": {"id": "o-1"}, "secrets": secrets, "instructions": ORDER_REPLIES}))
    dry_shipping = simulate(load_text(SHIPPING), script_from_data(
        {"secrets": secrets, "instructions": SHIPPING_REPLIES}))
    _same_history(order, dry_order)
    _same_history(shipping, dry_shipping)
    assert dry_order.path()[-1] == ("big", "done", "condition")
    assert dry_shipping.polls[0].attempts == 3 == far_end.calls["/status"]


def test_an_event_after_a_wrong_one_matches_the_dry_run(cluster, far_end, load):
    load(PAYMENT)
    run, _ = run_start(task="sim_payment", input={"order": "p-1"})
    wait_for(run.pk, state="awaiting", timeout=10)
    event_send(name="paid", correlation="p-1", payload={"amount": 5}, key="small")
    time.sleep(0.5)
    event_send(name="paid", correlation="p-1", payload={"amount": 12}, key="enough")
    run = wait_for(run.pk)
    dry = simulate(load_text(PAYMENT), script_from_data({
        "input": {"order": "p-1"},
        "events": [{"at": "0s", "name": "paid", "correlation": "p-1", "data": {"amount": 5}},
                   {"at": "500ms", "name": "paid", "correlation": "p-1",
                    "data": {"amount": 12}}]}))
    # Times differ by when the test got to send the events; the rest is the same.
    _same_history(run, dry, time_in_state=False)
    assert run.data == {"payment": {"amount": 12}}


def test_the_kept_script_of_a_shipped_task_matches_the_cluster(cluster, far_end, load):
    """taskdefs/hello.sim.yaml, as `simulate --check taskdefs` runs it, and the same input
    started on the cluster."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "taskdefs" / "hello.yaml").read_text()
    script = parse_script((root / "taskdefs" / "hello.sim.yaml").read_text())
    load(text)
    run, _ = run_start(task="hello", input=script.input)
    run = wait_for(run.pk)
    dry = simulate(load_text(text), script)
    _same_history(run, dry)
    assert run.data == dry.data == {"greeting": "HELLO ADA LOVELACE-BYRON!", "loud": True}
