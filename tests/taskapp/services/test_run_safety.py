"""Runs that cannot take the cluster down, on the real database: size limits at the
service edge, poison runs failing after MAX_STEP_CRASHES crashed steps, and cancel landing
while a step is in flight."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from engine import instructions
from engine.errors import InstructionError, LeaseLost
from engine.runner import Runner
from taskapp import models
from taskapp.isolation import isolation
from taskapp.services import (
    EventTooLarge,
    InputTooLarge,
    event_send,
    run_advance,
    run_cancel,
    run_redrive,
    run_start,
)
from taskapp.services import runs as runs_module

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

WAITER = """
name: waiter
version: 1
start_state: wait
states:
  wait:
    instructions:
      - set: {seen: true}
    transitions:
      - to: done
        subscribe: {event: go, save_as: got}
  done: {final: succeeded}
"""

CALLER = """
name: caller
version: 1
start_state: call
states:
  call:
    instructions:
      - name: ping
        http: {url: "http://127.0.0.1:9/ping"}
        timeout: 5s
        save_as: reply
    transitions:
      - to: done
  done: {final: succeeded}
"""


def _rows(run):
    return list(models.Transition.objects.filter(run=run).order_by("seq")
                .values_list("seq", "from_state", "to_state", "trigger", "detail"))


def _limits(**values):
    return override_settings(ASYNC_STATES={**settings.ASYNC_STATES, "DISPATCH": "none",
                                           "INLINE_RETRY_MAX_SECONDS": 0.0, **values})


# ---------------------------------------------------------------------------- sizes


def test_run_input_at_the_limit_starts_and_one_byte_more_is_refused(load_task, clock):
    load_task(WAITER)
    with _limits(MAX_INPUT_BYTES=100):
        run, created = run_start(task="waiter", input={"k": "x" * 92})  # 8 + 92 bytes
        assert created and run.input == {"k": "x" * 92}
        with pytest.raises(InputTooLarge) as info:
            run_start(task="waiter", input={"k": "x" * 93})
    assert str(info.value) == ("the input of a run of task 'waiter' is 101 bytes as JSON; "
                               "the limit is 100 bytes (MAX_INPUT_BYTES)")
    assert (info.value.code, info.value.field, info.value.size, info.value.limit) == (
        "input_too_large", "input", 101, 100)
    assert models.Run.objects.count() == 1


def test_input_nested_too_deep_to_measure_is_refused(load_task, clock):
    load_task(WAITER)
    deep: dict = {}
    for _ in range(50_000):
        deep = {"a": deep}
    with pytest.raises(InputTooLarge, match="nested too deeply to measure"):
        run_start(task="waiter", input=deep)
    assert not models.Run.objects.exists()


def test_event_payload_at_the_limit_is_kept_and_one_byte_more_is_refused(load_task, clock):
    with _limits(MAX_EVENT_BYTES=50):
        event, created = event_send(name="go", payload={"v": "y" * 42})  # 8 + 42 bytes
        assert created and event.payload == {"v": "y" * 42}
        with pytest.raises(EventTooLarge) as info:
            event_send(name="go", payload={"v": "y" * 43}, key="k")
    assert str(info.value) == ("the payload of event 'go' is 51 bytes as JSON; the limit "
                               "is 50 bytes (MAX_EVENT_BYTES)")
    assert info.value.field == "payload"
    assert models.Event.objects.count() == 1


# ---------------------------------------------------------------------------- poison runs


def _crash_by_exception(run, monkeypatch):
    def crash(self, snapshot):
        raise RuntimeError("bug")

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "advance", crash)
        with pytest.raises(RuntimeError):
            run_advance(run_id=run.pk)


def _crash_by_kill(run, clock):
    """A worker claims the run and dies: nobody gives it back; its lease runs out."""
    assert runs_module._claim(run.pk, "dead-host:1:x:1") is not None
    clock.advance(float(settings.ASYNC_STATES["LEASE_SECONDS"]) + 1)


def _crash_by_lost_lease(run, monkeypatch, clock):
    """The step runs past its lease and another worker takes the run: its commit is
    refused, and the thief never finishes either."""
    def taken_over(self, snapshot):
        clock.advance(float(settings.ASYNC_STATES["LEASE_SECONDS"]) + 1)
        assert runs_module._claim(run.pk, "thief:2:y:2") is not None
        raise LeaseLost(snapshot.id)

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "advance", taken_over)
        assert run_advance(run_id=run.pk) is None
    clock.advance(float(settings.ASYNC_STATES["LEASE_SECONDS"]) + 1)


def test_a_run_whose_steps_keep_crashing_fails_after_max_step_crashes(
        load_task, clock, monkeypatch):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    run_advance(run_id=run.pk)  # a clean step: the run waits in 'wait'
    _crash_by_exception(run, monkeypatch)
    _crash_by_kill(run, clock)
    run.refresh_from_db()
    assert (run.status, run.crashes, run.crash_error) == ("waiting", 2, "RuntimeError")
    _crash_by_exception(run, monkeypatch)
    run.refresh_from_db()
    assert run.crashes == 3 and run.lease_owner == ""

    outcome = run_advance(run_id=run.pk)  # the fourth claim refuses to step it again
    assert outcome is not None and outcome.finished
    run.refresh_from_db()
    message = (
        "3 steps in a row in state 'wait' began and never ended cleanly (a worker died or "
        "was killed, ran past its lease, or raised an unexpected error); the last error "
        "seen was RuntimeError; the limit is MAX_STEP_CRASHES=3. Fix the cause, then "
        "redrive the run.")
    error = {"code": "step_crashes", "crashes": 3, "limit": 3, "message": message,
             "last_error": "RuntimeError", "state": "wait"}
    assert (run.status, run.state, run.error, run.finished_at) == (
        "failed", "wait", error, clock.now())
    assert (run.lease_owner, run.lease_expires_at, run.wake_at, run.claimed_at,
            run.crashes) == ("", None, None, None, 0)
    assert not run.subscriptions.exists()
    assert [row[:4] for row in _rows(run)] == [(1, "", "wait", "start"),
                                               (2, "wait", "", "error")]
    assert _rows(run)[-1][4] == error

    run_redrive(run_id=run.pk)  # the cause fixed, the run goes on from where it stopped
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "waiting" and run.crashes == 0


def test_a_lease_lost_again_and_again_is_a_crash_too(load_task, clock, monkeypatch):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    for _ in range(2):
        _crash_by_lost_lease(run, monkeypatch, clock)
    run.refresh_from_db()
    assert run.crashes == 4  # each round: the stuck step's claim and the thief's
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.error["code"] == "step_crashes"
    assert run.error["crashes"] == 4 and "last_error" not in run.error
    assert [row[:4] for row in _rows(run)] == [(1, "", "", "error")]


def test_a_clean_step_starts_the_count_over(load_task, clock, monkeypatch):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    _crash_by_exception(run, monkeypatch)
    _crash_by_exception(run, monkeypatch)
    clock.advance(31)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.crashes, run.crash_error) == ("waiting", 0, "")
    _crash_by_exception(run, monkeypatch)
    _crash_by_exception(run, monkeypatch)
    _crash_by_exception(run, monkeypatch)
    run.refresh_from_db()
    assert run.status == "waiting" and run.crashes == 3


def _isolation_seen_by_the_step(run, monkeypatch) -> tuple[int, bool]:
    """Advance the run once; what ``taskapp.isolation`` said while its step ran."""
    seen = []
    advance = Runner.advance

    def watched(self, snapshot):
        seen.append(isolation.state())
        return advance(self, snapshot)

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "advance", watched)
        run_advance(run_id=run.pk)
    return seen[0]


def test_a_run_whose_last_step_crashed_is_stepped_alone(load_task, clock, monkeypatch):
    """A worker that dies takes every step it had in flight with it: the next step of
    each is alone in its process, so a second death is charged to the run that caused it
    and not to its neighbours (taskapp/isolation.py)."""
    load_task(WAITER)
    ordinary, _ = run_start(task="waiter")
    assert _isolation_seen_by_the_step(ordinary, monkeypatch) == (1, False)
    suspect, _ = run_start(task="waiter")
    _crash_by_kill(suspect, clock)
    assert _isolation_seen_by_the_step(suspect, monkeypatch) == (0, True)
    suspect.refresh_from_db()
    assert (suspect.status, suspect.crashes) == ("waiting", 0)  # a clean step: count over
    assert isolation.state() == (0, False)


def test_max_step_crashes_is_a_setting(load_task, clock, monkeypatch):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    with _limits(MAX_STEP_CRASHES=1):
        _crash_by_exception(run, monkeypatch)
        run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and run.error["crashes"] == 1
    assert "MAX_STEP_CRASHES=1" in run.error["message"]


# ---------------------------------------------------------------------------- cancel


def test_cancel_ends_a_waiting_run_at_once_with_its_transition(load_task, clock):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    run_advance(run_id=run.pk)
    clock.advance(7)
    cancelled = run_cancel(run_id=run.pk)
    assert (cancelled.status, cancelled.state, cancelled.finished_at) == (
        "cancelled", "wait", clock.now())
    assert cancelled.error == {"code": "cancelled", "message": "cancelled on request",
                               "state": "wait"}
    assert cancelled.cancel_requested and cancelled.cursor == {}
    assert (cancelled.lease_owner, cancelled.wake_at) == ("", None)
    assert cancelled.metrics["time_in_state"] == {"wait": 7.0}
    assert not cancelled.subscriptions.exists()
    assert [row[:4] for row in _rows(run)] == [(1, "", "wait", "start"),
                                               (2, "wait", "", "cancel")]
    assert run_advance(run_id=run.pk) is None  # nothing left to do: no second cancel row
    assert len(_rows(run)) == 2


def test_cancel_falls_back_to_a_request_when_the_step_keeps_committing_first(
        load_task, clock, monkeypatch):
    load_task(WAITER)
    run, _ = run_start(task="waiter")
    monkeypatch.setattr(runs_module, "_cancel_now", lambda run: False)
    requested = run_cancel(run_id=run.pk)
    assert requested.status == "pending" and requested.cancel_requested
    monkeypatch.undo()
    run_advance(run_id=run.pk)  # the step sees the request and ends the run itself
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert [row[:4] for row in _rows(run)] == [(1, "", "", "cancel")]


class _BlockingHttp:
    """An http executor whose far end never answers until the test lets it."""

    kind = "http"

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    def execute(self, spec, ctx):
        self.entered.set()
        self.release.wait(timeout=60)
        return {"status": 200, "headers": {}, "body": "late"}


@pytest.fixture
def blocking_http():
    original = instructions.executor_for("http")
    fake = _BlockingHttp()
    instructions.register(fake, replace=True)
    yield fake
    fake.release.set()
    instructions.register(original, replace=True)


@pytest.mark.django_db(transaction=True)
def test_cancel_lands_while_a_step_is_in_flight_and_its_late_commit_is_refused(
        load_task, clock, blocking_http):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; shown on PostgreSQL and in e2e")
    load_task(CALLER)
    run, _ = run_start(task="caller")
    outcomes = []

    def worker():
        outcomes.append(run_advance(run_id=run.pk))
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    assert blocking_http.entered.wait(timeout=30)
    held = models.Run.objects.get(pk=run.pk)
    assert held.lease_owner and held.claimed_at is not None

    cancelled = run_cancel(run_id=run.pk)  # the stuck step is not asked
    assert cancelled.status == "cancelled" and cancelled.lease_owner == ""
    assert cancelled.error == {"code": "cancelled", "message": "cancelled on request",
                               "state": "call"}

    blocking_http.release.set()  # the far end answers at last; the step tries to commit
    thread.join(timeout=30)
    assert outcomes == [None]  # LeaseLost: it wrote nothing
    run.refresh_from_db()
    assert run.status == "cancelled" and "reply" not in run.data
    assert [row[:4] for row in _rows(run)] == [(1, "", "call", "start"),
                                               (2, "call", "", "cancel")]
    assert not models.InstructionAttempt.objects.filter(run=run).exists()


def test_a_step_over_its_lease_cannot_renew_after_cancel(load_task, clock, monkeypatch):
    load_task(CALLER)
    run, _ = run_start(task="caller")

    class CancelMidCall:
        kind = "http"

        def execute(self, spec, ctx):
            run_cancel(run_id=run.pk)
            raise InstructionError("far end gone", error_class="connection", retryable=True)

    original = instructions.executor_for("http")
    instructions.register(CancelMidCall(), replace=True)
    try:
        assert run_advance(run_id=run.pk) is None
    finally:
        instructions.register(original, replace=True)
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert [row[:4] for row in _rows(run)] == [(1, "", "call", "start"),
                                               (2, "call", "", "cancel")]
    assert run.wake_at is None and run.lease_owner == ""
