"""The dashboard's reads (it never writes): counts, recent and changed runs, one run's history.

Each function returns plain dicts in the shape ``dashboard.messages`` formats, so the page's
first paint, the catch-up after a (re)connect and the poller all describe a run the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Avg, Count
from django.db.models.functions import TruncMinute

from taskapp.models import (
    EventConsumption,
    InstructionAttempt,
    PollRecord,
    Run,
    TaskDefinition,
    Transition,
)

RUN_FIELDS = ("id", "task_name", "task_version", "status", "state", "state_entered_at",
              "created_at", "updated_at", "finished_at")
TRANSITION_FIELDS = ("run_id", "seq", "from_state", "to_state", "trigger", "condition_kind",
                     "at", "time_in_state")


def status_counts() -> list[tuple[str, int]]:
    """Every status, in lifecycle order, with its number of runs (zeros included)."""
    counts = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [(status, counts.get(status, 0)) for status in Run.Status.values]


def state_counts() -> dict[str, list[dict]]:
    """Per task name: how many of its runs sit in each (status, state)."""
    rows = (Run.objects.values("task_name", "status", "state")
            .annotate(n=Count("id")).order_by("task_name", "status", "state"))
    by_task: dict[str, list[dict]] = {}
    for row in rows:
        by_task.setdefault(row["task_name"], []).append(
            {"status": row["status"], "state": row["state"], "n": row["n"]})
    return by_task


def task_state_counts(name: str) -> list[dict]:
    """How many runs of task ``name`` sit in each (status, state), as ``state_counts``."""
    rows = (Run.objects.filter(task_name=name).values("status", "state")
            .annotate(n=Count("id")).order_by("status", "state"))
    return [{"status": r["status"], "state": r["state"], "n": r["n"]} for r in rows]


def task_versions(name: str) -> list[TaskDefinition]:
    """Every stored version of ``name``, newest first, without their YAML and parsed forms
    (a task reloaded many times would otherwise load all of them for one page)."""
    return list(TaskDefinition.objects.filter(name=name).defer("source", "definition")
                .order_by("-version"))


def task_version(pk: int) -> TaskDefinition:
    return TaskDefinition.objects.get(pk=pk)


def latest_definitions() -> list[TaskDefinition]:
    latest: dict[str, TaskDefinition] = {}
    for definition in TaskDefinition.objects.order_by("name", "-version"):
        latest.setdefault(definition.name, definition)
    return list(latest.values())


def recent_runs(limit: int) -> list[Run]:
    return list(Run.objects.order_by("-created_at")[:limit])


def runs_changed_after(after: datetime, limit: int) -> list[dict]:
    """Runs whose row changed after ``after``, oldest change first (index ``run_updated``)."""
    return list(Run.objects.filter(updated_at__gt=after).order_by("updated_at")
                .values(*RUN_FIELDS)[:limit])


def transitions_of(run_ids: Iterable[object], after_at: datetime) -> dict[str, list[dict]]:
    """Per run id: its transitions stamped after ``after_at``, in order."""
    rows = (Transition.objects.filter(run_id__in=list(run_ids), at__gt=after_at)
            .order_by("run_id", "seq").values(*TRANSITION_FIELDS))
    by_run: dict[str, list[dict]] = {}
    for row in rows:
        by_run.setdefault(str(row.pop("run_id")), []).append(row)
    return by_run


def run_row(run_id: object) -> dict | None:
    return Run.objects.filter(id=run_id).values(*RUN_FIELDS).first()


def transitions_after(run_id: object, seq: int, limit: int = 500) -> list[dict]:
    """One run's transitions after ``seq`` (the unique (run, seq) index), in order."""
    fields = TRANSITION_FIELDS[1:]
    return list(Transition.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq")
                .values(*fields)[:limit])


# ---------------------------------------------------------------------------- one run

# A run page shows at most this many rows of each history (the newest); the API pages through
# all of them (``/api/runs/{id}/attempts/``).
HISTORY_LIMIT = 200


def run_get(run_id: object) -> Run | None:
    return Run.objects.filter(pk=run_id).first()


def run_transitions(run_id: object) -> list[Transition]:
    return list(Transition.objects.filter(run_id=run_id).order_by("seq"))


def run_attempts(run_id: object, limit: int = HISTORY_LIMIT) -> list[InstructionAttempt]:
    """The newest ``limit`` instruction attempts, oldest first."""
    rows = InstructionAttempt.objects.filter(run_id=run_id).order_by("-started_at", "-id")
    return list(reversed(rows[:limit]))


def run_polls(run_id: object, limit: int = HISTORY_LIMIT) -> list[PollRecord]:
    rows = PollRecord.objects.filter(run_id=run_id).order_by("-entry", "-transition_index")
    return list(reversed(rows[:limit]))


def run_events_taken(run_id: object, limit: int = HISTORY_LIMIT) -> list[EventConsumption]:
    """The events the run took, with the event (one join), oldest first."""
    rows = (EventConsumption.objects.filter(run_id=run_id).select_related("event")
            .order_by("-at", "-id"))
    return list(reversed(rows[:limit]))


# ---------------------------------------------------------------------------- overview


def transitions_per_minute(start: datetime) -> dict[datetime, int]:
    """Transitions committed since ``start`` (index ``transition_at``), per minute."""
    rows = (Transition.objects.filter(at__gte=start).annotate(minute=TruncMinute("at"))
            .values("minute").annotate(n=Count("id")).order_by())
    return {row["minute"]: row["n"] for row in rows}


def runs_finished_since(start: datetime, limit: int) -> list[dict]:
    """Runs finished since ``start`` (index ``run_finished``): status and times, newest first."""
    return list(Run.objects.filter(finished_at__gte=start).order_by("-finished_at")
                .values("status", "created_at", "start_at", "finished_at")[:limit])


def runs_ended_badly(statuses: Iterable[str], limit: int) -> list[Run]:
    """The newest runs that failed or timed out (index ``run_finished``)."""
    return list(Run.objects.filter(status__in=list(statuses), finished_at__isnull=False)
                .order_by("-finished_at")[:limit])


def runs_in_state_since(statuses: Iterable[str], before: datetime, limit: int) -> list[Run]:
    """Active runs that entered their state before ``before``, longest first."""
    return list(Run.objects.filter(status__in=list(statuses), state_entered_at__lt=before)
                .order_by("state_entered_at")[:limit])


def usual_time_in_state(since: datetime, states: Iterable[tuple[str, str]]) -> dict:
    """Per (task, state): the mean time runs spent in it and how many left it since ``since``."""
    states = list(states)
    if not states:
        return {}
    rows = (Transition.objects.filter(at__gte=since, from_state__in={s for _, s in states},
                                      run__task_name__in={t for t, _ in states})
            .values("run__task_name", "from_state")
            .annotate(mean=Avg("time_in_state"), n=Count("id")).order_by())
    return {(r["run__task_name"], r["from_state"]): (r["mean"], r["n"]) for r in rows}
