"""The run page's actions: cancel, redrive, send an event. Thin views over taskapp's services
(the only writers), under the API's rule (``taskapp.permissions``): a user who may not control
runs gets 403 here, as from the API, and never sees the buttons.

Each action is a POST with Django's CSRF token and an explicit confirmation: the form carries
``confirmed=yes`` once the user said yes in the page's dialog; without it (no JavaScript, or
a crafted request) the answer is a confirmation page that posts the same fields again. The
result comes back as a message on the run page (Post/Redirect/Get).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework.exceptions import APIException

from taskapp import services
from taskapp.api.parsers import decode_json
from taskapp.permissions import can_control_runs

Action = Callable[[HttpRequest, Any], str]


def _action(label: str, perform: Action) -> Callable[[HttpRequest, Any], HttpResponse]:
    @login_required
    @require_POST
    def view(request: HttpRequest, run_id: Any) -> HttpResponse:
        if not can_control_runs(request.user):
            raise PermissionDenied("controlling runs needs the 'taskapp.change_run' permission")
        if request.POST.get("confirmed") != "yes":
            return render(request, "dashboard/confirm.html", {
                "label": label, "run_id": run_id,
                "fields": [(k, v) for k, v in request.POST.items()
                           if k not in ("csrfmiddlewaretoken", "confirmed")]})
        try:
            messages.success(request, perform(request, run_id))
        except (services.ServiceError, APIException) as exc:
            messages.error(request, f"{label} refused: {_reason(exc)}")
        return redirect("dashboard:run", run_id=run_id)

    return view


def _reason(exc: Exception) -> str:
    if isinstance(exc, APIException):
        return str(exc.detail)
    return str(exc)


def _cancel(request: HttpRequest, run_id: Any) -> str:
    run = services.run_cancel(run_id=run_id)
    if run.is_finished:
        return "Run cancelled."
    return "Cancel requested: the run ends at its next move."


def _redrive(request: HttpRequest, run_id: Any) -> str:
    state = request.POST.get("state") or None
    run = services.run_redrive(run_id=run_id, state=state)
    return f"Run redriven from state {run.state!s}."


def _send_event(request: HttpRequest, run_id: Any) -> str:
    name = request.POST.get("name", "").strip()
    if not name:
        raise services.ServiceError("an event needs a name")
    text = request.POST.get("data", "").strip()
    payload = decode_json(text) if text else None
    _, created = services.event_send(name=name, payload=payload, run_id=run_id)
    return f"Event {name} sent." if created else f"Event {name} was a duplicate: nothing sent."


cancel = _action("Cancel", _cancel)
redrive = _action("Redrive", _redrive)
send_event = _action("Send event", _send_event)
