"""The dashboard's pages: server-rendered first, then kept live by
``static/dashboard/dashboard.js`` over ``ws/runs/`` (dashboard.consumers). They only read;
the actions a run page offers post to ``dashboard.actions``, which calls taskapp's services,
and a task page's dry run posts to ``dashboard.dry_run``, which stores nothing.

Task and run pages inline the task's state diagram as SVG (``engine.diagram``, the same
drawing as ``manage.py graph`` and the API); ``static/dashboard/diagram.js`` zooms, pans and
overlays the live counts and the run's path on it.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import dry_run, overview, run_page, runs_list, selectors, task_page
from engine.runs import RunStatus
from taskapp.models import Run

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
        **overview.panels(),
    })


@login_required
def overview_panels(request: HttpRequest) -> HttpResponse:
    """The overview's charts and attention list alone, fetched again by the page."""
    return render(request, "dashboard/_overview_panels.html", overview.panels())


def _run_or_404(run_id: object) -> Run:
    run = selectors.run_get(run_id)
    if run is None:
        raise Http404("No such run")
    return run


@login_required
def run_detail(request: HttpRequest, run_id: object) -> HttpResponse:
    run = _run_or_404(run_id)
    return render(request, "dashboard/run.html", run_page.page(run, request.user))


@login_required
def run_panels(request: HttpRequest, run_id: object) -> HttpResponse:
    """The run page's live panels alone, fetched again by the page when the run changes."""
    run = _run_or_404(run_id)
    return render(request, "dashboard/_run_panels.html", run_page.panels(run, request.user))


@login_required
def task_detail(request: HttpRequest, name: str) -> HttpResponse:
    context = task_page.page(name, version=request.GET.get("version", ""),
                             diff=request.GET.get("diff", ""), user=request.user)
    if "script" in request.GET:
        context["dry_run"] = dry_run.kept(request.GET["script"], context, request.user)
    return render(request, "dashboard/task.html", context)


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    """The runs list: filters, keyset pages, rows kept live by dashboard.js."""
    since = timezone.now()
    queryset, filters = runs_list.filtered(request.GET)
    error = ""
    try:
        listing = runs_list.page(queryset, before=request.GET.get("before", ""),
                                 after=request.GET.get("after", ""))
    except runs_list.BadCursor as exc:
        error, listing = str(exc), runs_list.page(queryset)
    keep = request.GET.copy()
    for key in ("before", "after"):
        keep.pop(key, None)
    return render(request, "dashboard/runs.html", {
        "since": since.isoformat(),
        "filters": filters,
        "statuses": [s.value for s in RunStatus],
        "chosen_statuses": request.GET.getlist("status"),
        "task_names": [d.name for d in selectors.latest_definitions()],
        "page": listing,
        "query": keep.urlencode(),
        "first_page": not request.GET.get("before") and not request.GET.get("after"),
        "cursor_error": error,
    })
