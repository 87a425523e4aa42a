"""``POST /api/tasks/simulate/``: a dry run of a loaded task, or of task YAML not loaded,
against a script (docs/simulate.md). Nothing is stored or sent anywhere; the run is bounded
like every simulation (steps, transitions, virtual and wall time, sizes) and the body by
``API_MAX_BODY_BYTES``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.errors import SpecError
from engine.simulation import (
    Script,
    ScriptError,
    SimulationError,
    parse_script,
    script_from_data,
)
from taskapp.api import serializers as s
from taskapp.api.parsers import JsonParser
from taskapp.api.permissions import CanSimulateTasks
from taskapp.api.runs import _errors
from taskapp.simulations import request_bounds, task_for_simulation, task_simulate


class TaskSimulateView(APIView):
    permission_classes = [CanSimulateTasks]
    parser_classes = [JsonParser]

    @extend_schema(
        summary="Dry run a task on a virtual clock against a script (nothing is stored)",
        request=s.SimulateInSerializer,
        responses={200: s.SimulationSerializer, **_errors(400, 401, 403, 413)},
    )
    def post(self, request):
        params = s.SimulateInSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        given = params.validated_data
        task = _task(given)
        script = _script(given["script"])
        try:
            result = task_simulate(task=task, script=script, input=given["input"],
                                   bounds=request_bounds())
        except SimulationError as exc:
            raise ValidationError({"script": _messages(exc)}) from None
        return Response(result.to_json())


def _task(given: dict):
    try:
        return task_for_simulation(name=given.get("task"), version=given.get("version"),
                                   text=given.get("text"), source="<api>")
    except SpecError as exc:
        raise ValidationError({"text": [str(p) for p in exc.problems[:20]]}) from None


def _script(raw: dict | str) -> Script:
    try:
        if isinstance(raw, str):
            return parse_script(raw, "<script>")
        return script_from_data(raw, "<script>")
    except ScriptError as exc:
        raise ValidationError({"script": _messages(exc)}) from None


def _messages(exc: SimulationError) -> list[str]:
    problems = getattr(exc, "problems", None)
    return [str(p) for p in problems[:20]] if problems else [str(exc)]
