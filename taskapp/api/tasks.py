"""Tasks: what is loaded, each task's versions, graph and live run counts, and validation of
task YAML without loading it."""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.language import Report, validate_text
from taskapp import selectors
from taskapp.api import serializers as s
from taskapp.api.params import whole_number
from taskapp.api.parsers import JsonParser, PlainTextParser, TextYamlParser, YamlTextParser
from taskapp.api.runs import _errors
from taskapp.conf import conf
from taskapp.errorcodes import ErrorCode

log = logging.getLogger("async_states.api")


class TaskListView(APIView):
    @extend_schema(summary="Loaded tasks",
                   responses={200: s.TaskSummarySerializer(many=True), **_errors(401)})
    def get(self, request):
        return Response(s.TaskSummarySerializer(selectors.tasks_list(), many=True).data)


class TaskDetailView(APIView):
    @extend_schema(
        summary="A task: its versions, its graph, and its runs now",
        parameters=[OpenApiParameter(
            "version", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            description="The graph of this version (default: the latest).")],
        responses={200: s.TaskDetailSerializer, **_errors(400, 401, 404)},
    )
    def get(self, request, name):
        version = _version(request.query_params.get("version"))
        definition = selectors.task_definition(name=name, version=version)
        if definition is None:
            which = f"version {version} of task '{name}'" if version else f"task '{name}'"
            raise NotFound(f"{which} is not loaded", code=ErrorCode.TASK_NOT_FOUND)
        body = {
            "name": name, "version": definition.version, "description": definition.description,
            "versions": selectors.task_versions(name=name),
            "graph": selectors.task_graph(definition=definition),
            "runs_by_status": selectors.task_runs_by_status(name=name),
            "runs_in_state": selectors.task_runs_by_state(name=name),
        }
        return Response(s.TaskDetailSerializer(body).data)


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    return whole_number(text, name="version", low=1, high=2**31 - 1)


class TaskValidateView(APIView):
    """Validate task YAML: JSON ``{"text": ...}``, or the YAML itself as the body
    (``application/yaml``, ``text/yaml`` or ``text/plain``; left out of the schema, where a
    string body would read as YAML that is not one)."""

    parser_classes = [JsonParser, YamlTextParser, TextYamlParser, PlainTextParser]

    @extend_schema(
        summary="Validate a task definition (nothing is loaded)",
        request={"application/json": s.ValidateInSerializer},
        responses={200: s.ValidateOutSerializer, **_errors(400, 401, 413)},
    )
    def post(self, request):
        # A YAML body is the text itself; a JSON body is an object (a JSON string is not one).
        media_type = request.content_type.split(";")[0].strip().lower()
        as_text = isinstance(request.data, str) and media_type != JsonParser.media_type
        raw = {"text": request.data} if as_text else request.data
        params = s.ValidateInSerializer(data=raw)
        params.is_valid(raise_exception=True)
        report = _validate(params.validated_data["text"], params.validated_data["source"])
        return Response(s.ValidateOutSerializer({
            "ok": report.ok,
            "task": report.task.name if report.task else None,
            "version": report.task.version if report.task else None,
            "problems": report.problems,
        }).data)


def _validate(text: str, source: str) -> Report:
    """The reader's report. The reader ends every text in a definition or problems, within
    its limits; should anything still escape it, that is this text's doing (the text is all
    that varies), so it is a 400 naming ``text``, never a 500."""
    try:
        return validate_text(text, source, conf.reader_limits())
    except Exception as exc:  # RecursionError, OverflowError, MemoryError...: see docstring
        log.warning("tasks.validate_failed source=%r", source, exc_info=True)
        raise ValidationError({"text": [
            f"the task reader could not read this text ({type(exc).__name__}: "
            f"{str(exc)[:200]})"]}) from None
