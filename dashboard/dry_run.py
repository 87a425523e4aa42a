"""A dry run from the task page: the shown version against a script pasted in the page,
answered with the task page itself, the simulated path drawn on its diagram.

A thin view over ``taskapp.simulations`` (what ``POST /api/tasks/simulate/`` calls), under
the API's rule and bounds: ``taskapp.simulate_task`` (403 without it, and no form in the page),
a body of at most ``API_MAX_BODY_BYTES`` (413), JSON input read as the API reads it, and the
wall time of ``SIMULATION_MAX_SECONDS``. Nothing is stored: a simulation has its own store.

The form also offers the scripts kept beside the task's file in ``TASKDEFS_DIR`` (those
``manage.py simulate --check`` pairs with it): ``?script=<name>`` on the task page fills the
form with one, the name matched against that list and never read as a path. A script with an
``expect:`` has its outcome compared with the dry run's, as ``simulate --check`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST
from rest_framework.exceptions import APIException

from dashboard import task_page
from engine.runs import RunStatus
from engine.simulation import Simulation, SimulationError, parse_script
from engine.simulation.check import mismatches
from engine.simulation.script import Expect
from taskapp.api.parsers import decode_json
from taskapp.conf import conf
from taskapp.permissions import can_simulate_tasks
from taskapp.simulations import KeptScript, request_bounds, task_simulate


@dataclass(slots=True)
class DryRun:
    """The form as sent, and what came of it: a simulation or the problems that stopped it."""

    script: str = ""
    input: str = ""
    kept: str = ""  # the kept script's name the text came from, if it did
    problems: list[str] = field(default_factory=list)
    result: Simulation | None = None
    expect: Expect | None = None  # the script's ``expect:``, once it parsed

    @property
    def differences(self) -> list[str]:
        """What differs from the script's ``expect:`` (empty: met, or nothing expected)."""
        if self.result is None or self.expect is None:
            return []
        return mismatches(self.expect, self.result)

    @property
    def ended(self) -> bool:
        return self.result is not None and RunStatus(self.result.status).finished

    @property
    def transitions(self) -> list[dict[str, Any]]:
        return self.result.to_json()["transitions"] if self.result else []

    @property
    def elapsed(self) -> float:
        return (self.result.offset(self.result.now) or 0.0) if self.result else 0.0


@login_required
@require_POST
def simulate(request: HttpRequest, name: str) -> HttpResponse:
    if not can_simulate_tasks(request.user):
        raise PermissionDenied("dry runs need the 'taskapp.simulate_task' permission")
    limit = int(conf.API_MAX_BODY_BYTES)
    if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
        return HttpResponse(f"The form is larger than {limit} bytes (API_MAX_BODY_BYTES).",
                            status=413, content_type="text/plain")
    context = task_page.page(name, version=request.POST.get("version", ""), user=request.user)
    dry_run = _dry_run(context["task_def"], request.POST.get("script", ""),
                       request.POST.get("input", ""))
    dry_run.kept = request.POST.get("kept", "")
    status = 400 if dry_run.problems else 200
    return render(request, "dashboard/task.html", {**context, "dry_run": dry_run},
                  status=status)


def kept(name: str, context: dict[str, Any], user: Any) -> DryRun:
    """The form filled with the kept script ``name``, one of ``context["kept_scripts"]``.

    Raises:
        PermissionDenied: ``user`` may not simulate.
        Http404: ``name`` is not one of the task's kept scripts.
    """
    if not can_simulate_tasks(user):
        raise PermissionDenied("dry runs need the 'taskapp.simulate_task' permission")
    chosen = next((k for k in context["kept_scripts"] if k.name == name), None)
    if chosen is None:
        raise Http404("No such script kept beside this task's file")
    dry_run = DryRun(kept=chosen.name)
    try:
        dry_run.script = _read(chosen)
        dry_run.expect = parse_script(dry_run.script, chosen.name).expect
    except SimulationError:
        pass  # shown as it is; the dry run will list its problems
    except (OSError, UnicodeDecodeError, KeptScriptTooLarge) as exc:
        dry_run.problems = [f"{chosen.name}: cannot read it: {exc}"]
    return dry_run


class KeptScriptTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"larger than {limit} bytes (API_MAX_BODY_BYTES)")


def _read(kept_script: KeptScript) -> str:
    # The same bound as a pasted script: a form past API_MAX_BODY_BYTES would be refused.
    limit = int(conf.API_MAX_BODY_BYTES)
    with kept_script.path.open("rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise KeptScriptTooLarge(limit)
    return data.decode("utf-8")


def _dry_run(task: Any, script_text: str, input_text: str) -> DryRun:
    dry_run = DryRun(script=script_text, input=input_text)
    try:
        script = parse_script(script_text, "script")
        dry_run.expect = script.expect
        payload = decode_json(input_text) if input_text.strip() else None
        if payload is not None and not isinstance(payload, dict):
            dry_run.problems = ["the input must be a JSON object"]
            return dry_run
        dry_run.result = task_simulate(task=task, script=script, input=payload,
                                       bounds=request_bounds())
    except SimulationError as exc:
        problems = getattr(exc, "problems", None)
        dry_run.problems = [str(p) for p in problems[:20]] if problems else [str(exc)]
    except APIException as exc:
        dry_run.problems = [f"input: {exc.detail}"]
    return dry_run
