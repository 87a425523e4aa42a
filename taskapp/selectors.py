"""The reads: run listings, a task's graph and versions, counts for metrics and health.

Views, the metrics collector and commands read through these; nothing here writes. The run
listing's filters themselves are declared in ``taskapp.api.filters`` (django-filter) on top
of ``runs_list()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, QuerySet

from engine import lifecycle
from engine.cursor import RunCursor
from engine.language import task_from_dict
from engine.language.model import SourceSpec, SubscribeCondition, TaskDef
from engine.runs import ACTIVE, FINISHED, RunSnapshot, RunStatus
from engine.sources import sources_of
from taskapp import models

ACTIVE_STATUSES = sorted(str(s) for s in ACTIVE)
FINISHED_STATUSES = sorted(str(s) for s in FINISHED)

# ---------------------------------------------------------------------------- definitions


@lru_cache(maxsize=512)
def definition_of(definition_id: int) -> TaskDef:
    """The parsed definition of a stored version (immutable, so cached per process)."""
    row = models.TaskDefinition.objects.only("definition").get(pk=definition_id)
    return task_from_dict(row.definition)


def definition_ids() -> list[int]:
    """The ids of every loaded definition (one query of an index)."""
    return list(models.TaskDefinition.objects.order_by("id").values_list("id", flat=True))


def broker_sources_of(definition_id: int) -> dict[tuple, tuple[SourceSpec, frozenset]]:
    """The broker sources one stored definition declares (``engine.sources.sources_of``)."""
    return sources_of([definition_of(definition_id)])


def snapshot_of(run: models.Run) -> RunSnapshot:
    """The engine's view of a run row: what a step starts from."""
    return RunSnapshot(
        id=str(run.id),
        task=definition_of(run.definition_id),
        status=RunStatus(run.status),
        state=run.state or None,
        entry=run.entry,
        state_entered_at=run.state_entered_at,
        input=run.input,
        data=run.data,
        cursor=RunCursor.from_json(run.cursor),
        created_at=run.created_at,
        deadline_at=run.deadline_at,
        cancel_requested=run.cancel_requested,
        error=run.error,
        metrics=run.metrics,
        finished_at=run.finished_at,
    )



# ---------------------------------------------------------------------------- runs

# Run columns the API never reads: engine-private progress and the lease machinery.
_PRIVATE = ("cursor", "lease_owner", "lease_expires_at", "version", "signal")


def schema_ready() -> bool:
    """Whether the database holds the task definitions table, i.e. ``migrate`` has run.

    Raises:
        django.db.DatabaseError: the database cannot be reached.
    """
    return models.TaskDefinition._meta.db_table in connection.introspection.table_names()


def runs_list() -> QuerySet[models.Run]:
    """Every run, newest first, without the engine-private columns."""
    return models.Run.objects.defer(*_PRIVATE).order_by("-created_at", "-id")


def run_get(*, run_id: object) -> models.Run | None:
    return runs_list().filter(id=run_id).first()


def run_transitions(*, run: models.Run) -> QuerySet[models.Transition]:
    return models.Transition.objects.filter(run=run).order_by("seq")


def run_attempts(*, run: models.Run) -> QuerySet[models.InstructionAttempt]:
    return models.InstructionAttempt.objects.filter(run=run).order_by("started_at", "id")


# ---------------------------------------------------------------------------- tasks


@dataclass(frozen=True, slots=True)
class TaskSummary:
    name: str
    latest_version: int
    versions: int
    description: str
    updated_at: datetime


def tasks_list() -> list[TaskSummary]:
    """One summary per task name, by name; the description is the latest version's.

    Definitions are few (one row per loaded version), so one pass over them is enough.
    """
    rows = models.TaskDefinition.objects.only("name", "version", "description", "created_at")
    summaries: dict[str, TaskSummary] = {}
    for row in rows.order_by("name", "-version"):
        seen = summaries.get(row.name)
        if seen is None:
            summaries[row.name] = TaskSummary(row.name, row.version, 1, row.description,
                                              row.created_at)
        else:
            summaries[row.name] = TaskSummary(seen.name, seen.latest_version, seen.versions + 1,
                                              seen.description, seen.updated_at)
    return list(summaries.values())


def task_versions(*, name: str) -> list[models.TaskDefinition]:
    """The stored versions of ``name``, newest first (empty when there is no such task)."""
    return list(
        models.TaskDefinition.objects.filter(name=name)
        .defer("source", "definition").order_by("-version")
    )


def task_definition(*, name: str, version: int | None = None) -> models.TaskDefinition | None:
    rows = models.TaskDefinition.objects.filter(name=name)
    if version is not None:
        return rows.filter(version=version).first()
    return rows.order_by("-version").first()


def task_graph(*, definition: models.TaskDefinition) -> dict[str, Any]:
    """States and transitions of one version, as nodes and edges."""
    task = definition_of(definition.pk)
    return {"start_state": task.start_state, "states": _nodes(task), "transitions": _edges(task)}


def _nodes(task: TaskDef) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "description": s.description,
            "final": s.is_final,
            "outcome": str(s.outcome) if s.outcome else None,
            "instructions": [{"name": i.name, "kind": i.kind} for i in s.instructions],
            "timeout": task.timeout_for(s).total_seconds() if task.timeout_for(s) else None,
            "on_timeout": s.on_timeout,
        }
        for s in task.states
    ]


def _edges(task: TaskDef) -> list[dict[str, Any]]:
    return [
        {"source": s.name, "target": t.target, "index": index, "name": t.name,
         "condition_kind": t.condition_kind}
        for s in task.states
        for index, t in enumerate(s.transitions)
    ]


def task_runs_by_state(*, name: str) -> dict[str, dict[str, int]]:
    """How many unfinished runs of ``name`` are in each state now, by status."""
    rows = (
        models.Run.objects.filter(task_name=name, status__in=ACTIVE_STATUSES)
        .values("state", "status").annotate(n=Count("id")).order_by()
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["state"] or "", {})[row["status"]] = row["n"]
    return counts


def task_runs_by_status(*, name: str) -> dict[str, int]:
    rows = models.Run.objects.filter(task_name=name).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows.order_by()}


def task_event_names(*, name: str) -> set[str]:
    """Every event name some version of ``name`` subscribes to."""
    names: set[str] = set()
    for row in models.TaskDefinition.objects.filter(name=name).only("id"):
        for state in definition_of(row.pk).states:
            names.update(
                t.condition.event for t in state.transitions
                if isinstance(t.condition, SubscribeCondition)
            )
    return names


# ---------------------------------------------------------------------------- health


def cluster_heartbeats(*, since: datetime) -> list[models.ClusterHeartbeat]:
    return list(models.ClusterHeartbeat.objects.filter(beat_at__gte=since).order_by("-beat_at"))


def cluster_listeners(*, since: datetime) -> list[tuple[str, dict[str, Any]]]:
    """``(cluster owner, listener state)`` of every broker listener of the clusters that
    beat since ``since``."""
    rows = models.ClusterHeartbeat.objects.filter(beat_at__gte=since).order_by("owner")
    return [(row.owner, state) for row in rows.only("owner", "listeners")
            for state in row.listeners or []]


def heartbeat_window(interval: float) -> timedelta:
    """A cluster is alive when it beat within three intervals (one lost beat is no outage)."""
    return timedelta(seconds=3 * interval)


def runs_held_since(*, before: datetime, limit: int = 5) -> tuple[int, list[models.Run]]:
    """Runs whose current holder claimed them before ``before`` (a step running far past
    its budget): how many, and the oldest few."""
    held = models.Run.objects.filter(claimed_at__lt=before).exclude(lease_owner="")
    rows = list(held.order_by("claimed_at").only("id", "state", "lease_owner",
                                                  "claimed_at")[:limit])
    return (len(rows) if len(rows) < limit else held.count()), rows


def worker_incidents(*, kind: str, since: datetime) -> list[models.WorkerIncident]:
    """Incidents of ``kind`` noted since ``since``, newest first."""
    return list(models.WorkerIncident.objects.filter(kind=kind, noted_at__gte=since)
                .order_by("-noted_at"))


@dataclass(frozen=True, slots=True)
class LifecycleBacklog:
    """Lifecycle events waiting for one destination (``taskapp.services.lifecycle``)."""

    destination: str  # as engine.lifecycle.describe names it: a connection, never a URL
    pending: int
    oldest: datetime
    attempts: int  # of the most tried waiting event: 0 while nothing failed
    last_error: str


def lifecycle_backlog() -> list[LifecycleBacklog]:
    """Every destination with events waiting, the longest wait first."""
    rows = (models.LifecycleEvent.objects.values("destination")
            .annotate(n=Count("id"), oldest=Min("created_at"), tried=Max("attempts"))
            .order_by("oldest"))
    found = []
    for row in rows:
        error = ""
        if row["tried"]:
            error = (models.LifecycleEvent.objects.filter(destination=row["destination"])
                     .exclude(last_error="").order_by("-attempts", "id")
                     .values_list("last_error", flat=True).first() or "")
        shown = lifecycle.describe(lifecycle.destination_from_key(row["destination"]))
        found.append(LifecycleBacklog(shown, row["n"], row["oldest"], row["tried"], error))
    return found
