"""The landing page: what is running, what is loaded, what happened last. Read-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from taskapp.models import Run, TaskDefinition

RECENT_RUNS = 50


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html", {
        "status_counts": _status_counts(),
        "tasks": _tasks(),
        "recent_runs": Run.objects.order_by("-created_at")[:RECENT_RUNS],
    })


def _status_counts() -> list[tuple[str, int]]:
    """Every status, in lifecycle order, with its number of runs (zeros included)."""
    counts = dict(Run.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [(status, counts.get(status, 0)) for status in Run.Status.values]


def _tasks() -> list[dict]:
    """Each task's latest version and how many of its runs sit in each (status, state)."""
    latest: dict[str, TaskDefinition] = {}
    for definition in TaskDefinition.objects.order_by("name", "-version"):
        latest.setdefault(definition.name, definition)
    by_state = (
        Run.objects.values("task_name", "status", "state")
        .annotate(n=Count("id")).order_by("task_name", "status", "state")
    )
    states: dict[str, list[dict]] = {}
    for row in by_state:
        states.setdefault(row["task_name"], []).append(row)
    return [
        {"definition": definition, "states": states.get(name, [])}
        for name, definition in latest.items()
    ]
