"""A run parked by the engine before the cursor was a type resumes: its row's cursor, in
the JSON shape the engine has always written, is read, advanced and written back in it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import to_iso
from taskapp import models
from taskapp.services import event_send, run_advance, run_start

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PARKED = """
name: parked
version: 1
start_state: awaiting
states:
  awaiting:
    timeout: 2h
    instructions:
      - set: {status: waiting}
    transitions:
      - to: paid
        subscribe: {event: paid, correlate: "{{ input.id }}", save_as: payment}
      - to: expired
        wait: 1h
  paid: {final: succeeded}
  expired: {final: failed}
"""


def test_a_run_parked_with_an_old_cursor_resumes(load_task, clock):
    load_task(PARKED)
    run, _ = run_start(task="parked", input={"id": "A"})
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    entered = run.state_entered_at
    written = run.cursor
    # What the engine wrote before RunCursor, key for key (a cleared last_error was a null).
    old = {
        "phase": "conditions", "index": 1, "attempt": 0, "retry_at": None,
        "last_error": None, "timeout_at": to_iso(entered + timedelta(hours=2)),
        "armed_at": written["armed_at"], "subscribed": True,
        "armed": {"0": written["armed"]["0"],
                  "1": {"due": to_iso(entered + timedelta(hours=1))}},
    }
    assert written == {k: v for k, v in old.items() if k != "last_error"}
    models.Run.objects.filter(pk=run.pk).update(cursor=old)

    event_send(name="paid", correlation="A", payload={"amount": 3}, key="p1")
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.state == "paid"
    assert run.data == {"status": "waiting", "payment": {"amount": 3}} and run.cursor == {}
