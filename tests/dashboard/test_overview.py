"""The overview: small server-drawn charts of the last hour and the runs that need attention
(failed, timed out, or in a state far longer than that state usually takes)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard import overview

pytestmark = pytest.mark.django_db

FLOP = """\
name: flop
version: 1
start_state: trying
states:
  trying:
    transitions:
      - to: gave_up
  gave_up:
    final: failed
"""


def _finish_resting_runs(count: int, clock) -> list:
    from taskapp.services import run_advance, run_start

    runs = [run_start(task="greeter", input={"n": i})[0] for i in range(count)]
    for run in runs:
        run_advance(run_id=run.pk)
    clock.advance(3601)
    for run in runs:
        run_advance(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == "succeeded"
    return runs


def test_a_run_far_longer_than_usual_in_its_state_needs_attention(greeter, no_dispatch, clock):
    from taskapp.services import run_advance, run_start

    greeter()
    _finish_resting_runs(3, clock)  # runs usually spend one hour in ``resting``
    late, _ = run_start(task="greeter")
    run_advance(run_id=late.pk)
    now = clock.now()
    assert overview.slow_runs(now + timedelta(hours=2)) == []
    slow = overview.slow_runs(now + timedelta(hours=5))
    assert [(s.run.pk, s.samples, round(s.usual)) for s in slow] == [(late.pk, 3, 3601)]


def test_no_judgement_without_enough_history(greeter, no_dispatch, clock):
    from taskapp.services import run_advance, run_start

    greeter()
    _finish_resting_runs(2, clock)
    late, _ = run_start(task="greeter")
    run_advance(run_id=late.pk)
    assert overview.slow_runs(clock.now() + timedelta(days=1)) == []


def test_overview_lists_failed_runs_and_draws_the_last_hour(admin_client, no_dispatch):
    from taskapp.services import definition_load, run_advance, run_start

    assert definition_load(text=FLOP, source="flop.yaml").status == "loaded"
    run, _ = run_start(task="flop")
    run_advance(run_id=run.pk)
    page = admin_client.get("/").content.decode()
    attention = page.split('id="failed-runs"', 1)[1].split("</table>", 1)[0]
    assert f'<tr data-run="{run.pk}">' in attention and "✗ failed" in attention
    assert 'aria-label="Transitions per minute over the last 60 minutes: 2 in all' in page
    assert 'aria-label="Durations of the 1 runs that finished in the last hour (1 did not' in page
    assert page.count('class="mark failed"') == 1
    panels = admin_client.get("/overview/panels/").content.decode()
    assert panels.lstrip().startswith('<div id="overview-panels">')


def test_overview_panels_need_a_session(client):
    assert client.get("/overview/panels/").status_code == 302
