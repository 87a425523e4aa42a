"""Deleting finished runs the retention policy no longer keeps, and events nobody will read.

The policy is the admin's ``RetentionPolicy`` row, overridden per task by the ``retention:``
key of the task's latest version. Runs go in id batches, each batch in its own short
transaction, so the engine's own writes wait at most one batch. Only finished runs are ever
deleted: every batch re-reads the status of its rows under a row lock, so a run redriven
after it was selected stays.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet

from engine.language.model import Retention
from engine.runs import FINISHED, REDRIVABLE, RunStatus
from taskapp import dispatch, models
from taskapp.conf import conf
from taskapp.selectors import definition_of

FINISHED_STATUSES = sorted(str(s) for s in FINISHED)
FAILED_STATUSES = sorted(str(s) for s in REDRIVABLE)

# Measured on this machine (2 cores, noisy), 10,000 finished runs with 6 transitions, 2
# instruction attempts and 1 event each, deleted in batches: 500 runs per batch took 0.10 s
# (median; max 0.20 s) on SQLite and 0.17 s (max 0.27 s) on PostgreSQL, so the engine's own
# writes wait at most that long. 5,000 per batch held the lock 1.1 s on SQLite and 2.7 s on
# PostgreSQL: long enough for every enqueue and web write to feel it.
DEFAULT_BATCH_SIZE = 500


@dataclass
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    dry_run: bool
    planned: int = 0
    runs: int = 0
    events: int = 0
    batches: int = 0
    by_task: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


Progress = Callable[[PurgeReport], None]


@dataclass(frozen=True, slots=True)
class _Rule:
    """Runs of one task to delete: ``runs`` past ``keep`` newest (``keep`` None: all)."""

    task: str
    runs: QuerySet[models.Run]
    keep: int | None = None


def runs_purge(
    *,
    now: datetime | None = None,
    task: str | None = None,
    statuses: Iterable[str] | None = None,
    older_than: timedelta | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PurgeReport:
    """Delete the finished runs the retention policy no longer keeps, with their history.

    Args:
        now: the time the policy's ages are measured from (default: the engine's clock).
        task: only runs of this task.
        statuses: only runs with these (finished) statuses.
        older_than: instead of the policy, every finished run that finished before
            ``now - older_than`` (the count limit does not apply then).
        batch_size: runs deleted per transaction.
        dry_run: count what would go; delete nothing.
        progress: called with the report after each batch.

    Returns:
        The report: how many runs (by task and status) and events went, in how many batches;
        in a dry run, how many runs would go (by task).

    Raises:
        ValueError: ``statuses`` names an unfinished or unknown status, or ``batch_size`` < 1.
    """
    chosen = _statuses(statuses)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or conf.clock.now()
    started = time.monotonic()
    report = PurgeReport(dry_run=dry_run)
    rules = _rules(now, task, chosen, older_than)
    planned = _planned(rules)
    report.planned = sum(planned.values())
    if dry_run:
        report.by_task = planned
    else:
        for rule in rules:
            _apply(rule, batch_size, report, progress)
        report.events = _events_purge(now, batch_size)
    report.seconds = time.monotonic() - started
    return report


def _statuses(statuses: Iterable[str] | None) -> list[str]:
    if statuses is None:
        return FINISHED_STATUSES
    chosen = sorted(set(statuses))
    wrong = [s for s in chosen if s not in FINISHED_STATUSES]
    if wrong:
        raise ValueError(
            f"cannot purge runs that are {', '.join(wrong)}: only finished runs "
            f"({', '.join(FINISHED_STATUSES)}) are ever purged"
        )
    return chosen


def _rules(
    now: datetime, task: str | None, statuses: list[str], older_than: timedelta | None
) -> list[_Rule]:
    finished = models.Run.objects.filter(status__in=statuses)
    names = finished.filter(task_name=task) if task else finished
    rules: list[_Rule] = []
    for name in sorted(set(names.values_list("task_name", flat=True).distinct())):
        mine = finished.filter(task_name=name)
        if older_than is not None:
            rules.append(_Rule(name, mine.filter(finished_at__lt=now - older_than)))
        else:
            rules.extend(_policy_rules(name, mine, now))
    return rules


def retention_policy_ensure() -> models.RetentionPolicy:
    """The one policy row, created with its defaults (and its purge scheduled) when missing."""
    policy, created = models.RetentionPolicy.objects.get_or_create(pk=1)
    if created:
        dispatch.schedule_purge(policy.purge_interval_minutes)
    return policy


def retention_policy_save(*, policy: models.RetentionPolicy) -> None:
    """Save the policy as edited (in the admin) and reschedule the automatic purge."""
    policy.pk = 1
    policy.save()
    dispatch.schedule_purge(policy.purge_interval_minutes)


def _policy_rules(name: str, mine: QuerySet[models.Run], now: datetime) -> list[_Rule]:
    policy = models.RetentionPolicy.load()
    override = _task_retention(name) or Retention()
    succeeded_days = _first(override.succeeded_days, policy.succeeded_days)
    failed_days = _first(override.failed_days, policy.failed_days)
    keep = _first(override.max_finished_runs, policy.max_finished_runs_per_task)
    rules = [
        _Rule(name, mine.filter(status=RunStatus.SUCCEEDED,
                                finished_at__lt=now - timedelta(days=succeeded_days))),
        _Rule(name, mine.filter(status__in=FAILED_STATUSES,
                                finished_at__lt=now - timedelta(days=failed_days))),
    ]
    if keep is not None:
        rules.append(_Rule(name, mine, keep=keep))
    return rules


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _task_retention(name: str) -> Retention | None:
    latest = models.TaskDefinition.objects.filter(name=name).order_by("-version").first()
    return definition_of(latest.pk).retention if latest else None


def _planned(rules: list[_Rule]) -> Counter[str]:
    """How many runs the rules remove. A task's day rules come before its count rule, which
    keeps the newest ``keep`` of what they leave, so their runs are not counted twice."""
    removed: Counter[str] = Counter()
    for rule in rules:
        total = rule.runs.count()
        removed[rule.task] += total if rule.keep is None else max(
            0, total - removed[rule.task] - rule.keep)
    return +removed


def _apply(rule: _Rule, batch_size: int, report: PurgeReport, progress: Progress | None) -> None:
    while True:
        ordered = rule.runs.order_by("-finished_at", "-id").values_list("id", flat=True)
        window = ordered[rule.keep:rule.keep + batch_size] if rule.keep else ordered[:batch_size]
        ids = list(window)
        if not ids:
            return
        deleted = _delete_batch(ids)
        if not deleted:
            return
        report.batches += 1
        report.runs += sum(deleted.values())
        report.by_task[rule.task] += sum(deleted.values())
        report.by_status.update(deleted)
        if progress:
            progress(report)


def _delete_batch(ids: list[object]) -> Counter[str]:
    """Delete the runs of ``ids`` that are still finished, with their rows; by status."""
    with transaction.atomic():
        rows = list(
            models.Run.objects.select_for_update()
            .filter(id__in=ids, status__in=FINISHED_STATUSES)
            .values_list("id", "status")
        )
        models.Run.objects.filter(id__in=[pk for pk, _ in rows]).delete()
    return Counter(status for _, status in rows)


def _events_purge(now: datetime, batch_size: int) -> int:
    """Delete expired events no unfinished run was addressed by (an addressed event is
    kept while its run lives; events of deleted runs went with them)."""
    stale = models.Event.objects.filter(
        Q(run__isnull=True) | Q(run__status__in=FINISHED_STATUSES), expires_at__lt=now
    )
    removed = 0
    while ids := list(stale.order_by("id").values_list("id", flat=True)[:batch_size]):
        with transaction.atomic():
            removed += models.Event.objects.filter(id__in=ids).delete()[1].get(
                "taskapp.Event", 0)
    return removed
