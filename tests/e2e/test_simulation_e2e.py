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
from taskapp.services import event_send, run_start
from tests.e2e.conftest import wait_for
from tests.e2e.simcompare import route, same_history

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

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


def test_retries_branches_waits_and_polls_match_the_dry_run(cluster, far_end, load):
    route(far_end, "/quote", ORDER_REPLIES["quote"])
    route(far_end, "/status", SHIPPING_REPLIES["status"])
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
    same_history(order, dry_order)
    same_history(shipping, dry_shipping)
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
    same_history(run, dry, time_in_state=False)
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
    same_history(run, dry)
    assert run.data == dry.data == {"greeting": "HELLO ADA LOVELACE-BYRON!", "loud": True}
