"""The landing page and the run detail page: server-rendered first, then kept live by
``static/dashboard/dashboard.js`` over ``ws/runs/`` (dashboard.consumers). Read-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import selectors
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
        "transitions": transitions,
        "last_seq": transitions[-1].seq if transitions else 0,
    })
