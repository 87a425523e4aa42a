"""The landing page, a task's page and a run's page: server-rendered first, then kept live by
``static/dashboard/dashboard.js`` over ``ws/runs/`` (dashboard.consumers). Read-only.

Task and run pages inline the task's state diagram as SVG (``engine.diagram``, the same
drawing as ``manage.py graph`` and the API); ``static/dashboard/diagram.js`` zooms, pans and
overlays the live counts and the run's path on it.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import selectors
from engine.diagram import diagram_of, to_svg
from taskapp.models import Run
from taskapp.selectors import definition_of

RECENT_RUNS = 50


@login_required
def index(request: HttpRequest) -> HttpResponse:
    # Taken before the reads: the page asks the websocket for whatever changed after it.
    since = timezone.now()
    states = selectors.state_counts()
    return render(request, "dashboard/index.html", {
        "since": since.isoformat(),
        "status_counts": selectors.status_counts(),
        "tasks": [{"definition": d, "states": states.get(d.name, [])}
                  for d in selectors.latest_definitions()],
        "recent_runs": selectors.recent_runs(RECENT_RUNS),
        "recent_limit": RECENT_RUNS,
    })


@login_required
def run_detail(request: HttpRequest, run_id: object) -> HttpResponse:
    try:
        run = Run.objects.get(pk=run_id)
    except Run.DoesNotExist:
        raise Http404("No such run") from None
    transitions = list(run.transitions.order_by("seq"))
    return render(request, "dashboard/run.html", {
        "run": run,
        "diagram": _diagram(run.definition_id),
        "transitions": transitions,
        "last_seq": transitions[-1].seq if transitions else 0,
    })


@login_required
def task_detail(request: HttpRequest, name: str) -> HttpResponse:
    versions = selectors.task_versions(name)
    wanted = request.GET.get("version", "")
    chosen = next((v for v in versions if str(v.version) == wanted), None) if wanted else None
    if not versions or (wanted and chosen is None):
        raise Http404("No such task or version")
    definition = selectors.task_version((chosen or versions[0]).pk)
    diagram = diagram_of(definition_of(definition.pk))
    return render(request, "dashboard/task.html", {
        "since": timezone.now().isoformat(),
        "definition": definition,
        "versions": versions,
        "svg": to_svg(diagram),
        "lints": [(node.name, lint) for node in diagram.nodes for lint in node.lints],
        "states": selectors.task_state_counts(name),
    })


def _diagram(definition_id: int) -> str:
    """The SVG of a stored version; built from our own escaped markup, safe to inline."""
    return to_svg(diagram_of(definition_of(definition_id)))


