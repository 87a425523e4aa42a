"""Retention: runs_purge and manage.py purge_runs apply the policy in batches, dry-run, and
never touch unfinished runs."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from taskapp import models, tasks
from taskapp.services import definition_load, event_send, run_advance, run_start, runs_purge

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

QUICK = """\
name: NAME
version: 1
start_state: a
RETENTION
states:
  a:
    transitions:
      - to: done
  done: {final: OUTCOME}
"""


@pytest.fixture(autouse=True)
def _no_dispatch(no_dispatch):
    yield


@pytest.fixture
def policy(db):
    policy = models.RetentionPolicy.load()
    policy.succeeded_days, policy.failed_days = 7, 30
    policy.max_finished_runs_per_task = None
    policy.save()
    return policy


def _load(name: str, outcome: str = "succeeded", retention: str = "") -> None:
    text = (QUICK.replace("NAME", name).replace("OUTCOME", outcome)
            .replace("RETENTION", retention))
    assert definition_load(text=text, source=f"{name}.yaml").status == "loaded"


def _finished(task: str, n: int = 1) -> list[models.Run]:
    runs = []
    for _ in range(n):
        run, _ = run_start(task=task)
        run_advance(run_id=run.pk)
        run.refresh_from_db()
        assert run.is_finished
        runs.append(run)
    return runs


def _kept(*runs: models.Run) -> list[bool]:
    present = set(models.Run.objects.values_list("pk", flat=True))
    return [run.pk in present for run in runs]


def test_the_policy_keeps_succeeded_n_days_and_failed_m_days(policy, clock):
    _load("good")
    _load("bad", "failed")
    old_good, old_bad = _finished("good")[0], _finished("bad")[0]
    clock.advance(timedelta(days=10).total_seconds())
    new_good = _finished("good")[0]
    report = runs_purge()
    assert _kept(old_good, old_bad, new_good) == [False, True, True]
    assert (report.runs, dict(report.by_status), dict(report.by_task)) == (
        1, {"succeeded": 1}, {"good": 1})
    clock.advance(timedelta(days=21).total_seconds())
    runs_purge()
    assert _kept(old_bad, new_good) == [False, False]


def test_history_goes_with_the_run(policy, clock):
    _load("good")
    run = _finished("good")[0]
    assert models.Transition.objects.filter(run=run).exists()
    clock.advance(timedelta(days=8).total_seconds())
    runs_purge()
    assert not models.Transition.objects.filter(run_id=run.pk).exists()


def test_the_task_yaml_overrides_the_policy(policy, clock):
    _load("brief", retention="retention: {succeeded_days: 1}")
    _load("good")
    brief, good = _finished("brief")[0], _finished("good")[0]
    clock.advance(timedelta(days=2).total_seconds())
    runs_purge()
    assert _kept(brief, good) == [False, True]


def test_at_most_k_finished_runs_per_task_the_newest_stay(policy, clock):
    policy.max_finished_runs_per_task = 2
    policy.save()
    _load("good")
    _load("capped", retention="retention: {max_finished_runs: 1}")
    runs = []
    for _ in range(4):
        runs += _finished("good")
        clock.advance(1)
    capped = _finished("capped") + [clock.advance(1) and _finished("capped")[0]]
    report = runs_purge()
    assert _kept(*runs) == [False, False, True, True]
    assert _kept(*capped) == [False, True]
    assert report.runs == 3 and report.planned == 3


def test_unfinished_runs_are_never_touched(policy, clock, greeter):
    greeter()
    waiting, _ = run_start(task="greeter")
    run_advance(run_id=waiting.pk)
    pending, _ = run_start(task="greeter")
    clock.advance(timedelta(days=1000).total_seconds())
    report = runs_purge(older_than=timedelta(0))
    assert report.runs == 0
    assert _kept(waiting, pending) == [True, True]
    with pytest.raises(ValueError, match="only finished runs"):
        runs_purge(statuses=["waiting"])


def test_deletes_in_batches_and_reports_progress(policy, clock):
    _load("good")
    _finished("good", 5)
    clock.advance(timedelta(days=8).total_seconds())
    seen = []
    report = runs_purge(batch_size=2, progress=lambda r: seen.append((r.batches, r.runs)))
    assert seen == [(1, 2), (2, 4), (3, 5)]
    assert (report.batches, report.runs, report.planned) == (3, 5, 5)
    assert not models.Run.objects.exists()


def test_dry_run_counts_and_deletes_nothing(policy, clock):
    _load("good")
    _finished("good", 3)
    clock.advance(timedelta(days=8).total_seconds())
    report = runs_purge(dry_run=True)
    assert (report.planned, report.runs, dict(report.by_task)) == (3, 0, {"good": 3})
    assert models.Run.objects.count() == 3


def test_filters_task_status_and_older_than(policy, clock):
    _load("good")
    _load("bad", "failed")
    good, bad = _finished("good")[0], _finished("bad")[0]
    clock.advance(3600)
    assert runs_purge(older_than=timedelta(hours=2)).runs == 0
    assert runs_purge(older_than=timedelta(minutes=30), task="bad").runs == 1
    assert _kept(good, bad) == [True, False]
    assert runs_purge(older_than=timedelta(0), statuses=["failed"]).runs == 0
    assert runs_purge(older_than=timedelta(0), statuses=["succeeded"]).runs == 1


def test_expired_events_go_unless_their_run_lives(policy, clock, greeter):
    greeter()
    live, _ = run_start(task="greeter")
    kept, _ = event_send(name="ping", run_id=live.pk, ttl=60)
    loose, _ = event_send(name="ping", correlation="x", ttl=60)
    fresh, _ = event_send(name="ping", correlation="y", ttl=86400)
    clock.advance(120)
    assert runs_purge().events == 1
    assert set(models.Event.objects.values_list("pk", flat=True)) == {kept.pk, fresh.pk}
    assert loose.pk


def test_command_reports_progress_and_what_it_removed(policy, clock):
    _load("good")
    _finished("good", 3)
    clock.advance(timedelta(days=8).total_seconds())
    out = StringIO()
    call_command("purge_runs", "--dry-run", stdout=out)
    assert "would remove 3 finished run(s)" in out.getvalue()
    assert models.Run.objects.count() == 3
    out = StringIO()
    call_command("purge_runs", "--batch-size", "2", stdout=out)
    text = out.getvalue()
    assert "batch 1: 2 of 3 runs removed" in text and "batch 2: 3 of 3" in text
    assert "removed 3 finished run(s) in 2 batch(es)" in text and "good: 3" in text


def test_command_options(policy, clock):
    _load("good")
    _load("bad", "failed")
    _finished("good")
    _finished("bad")
    clock.advance(7200)
    out = StringIO()
    call_command("purge_runs", "--older-than", "1h", "--task", "bad", "--status", "failed",
                 stdout=out)
    assert "removed 1 finished run(s)" in out.getvalue()
    assert list(models.Run.objects.values_list("task_name", flat=True)) == ["good"]
    with pytest.raises(CommandError, match="older-than"):
        call_command("purge_runs", "--older-than", "soon")


def test_the_cluster_task_purges_with_the_policy(policy, clock):
    _load("good")
    _finished("good")
    clock.advance(timedelta(days=8).total_seconds())
    assert tasks.purge_runs().startswith("purged 1 runs")


def test_saving_the_policy_in_the_admin_reschedules_the_purge(admin_client, policy):
    from django_q.models import Schedule

    from taskapp.dispatch import PURGE, PURGE_SCHEDULE

    url = f"/admin/taskapp/retentionpolicy/{policy.pk}/change/"
    form = {"succeeded_days": 3, "failed_days": 9, "max_finished_runs_per_task": 100,
            "purge_interval_minutes": 15, "batch_size": 200}
    assert admin_client.post(url, form).status_code == 302
    schedule = Schedule.objects.get(name=PURGE_SCHEDULE)
    assert (schedule.func, schedule.minutes, schedule.schedule_type) == (PURGE, 15, "I")
    assert models.RetentionPolicy.load().succeeded_days == 3
    admin_client.post(url, {**form, "purge_interval_minutes": 0})
    assert not Schedule.objects.filter(name=PURGE_SCHEDULE).exists()
    listing = admin_client.get("/admin/taskapp/retentionpolicy/")
    assert listing.status_code == 302 and listing.url == url
