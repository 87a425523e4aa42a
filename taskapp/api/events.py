"""Events not addressed by URL: by name and correlation value, to every run that subscribes,
or buffered for the run they name; and a task's webhook, open to its secret."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.views import APIView

from taskapp import selectors, services
from taskapp.api import serializers as s
from taskapp.api import webhook
from taskapp.api.permissions import CanControlRuns, CanControlRunsOrWebhookSecret
from taskapp.api.runs import _errors, event_response
from taskapp.errorcodes import ErrorCode


def _send(data: dict, run_id=None):
    event, created = services.event_send(
        name=data["name"], payload=data.get("data"), key=data.get("id"),
        run_id=run_id if run_id is not None else data.get("run"),
        correlation=data.get("correlation"), ttl=data.get("ttl"))
    return event_response(event, created)


class EventSendView(APIView):
    permission_classes = [CanControlRuns]

    @extend_schema(
        summary="Send an event by name and correlation value, or buffered for one run",
        request=s.EventBroadcastSerializer,
        responses={201: s.EventSerializer, 200: s.EventSerializer,
                   **_errors(400, 401, 403, 404, 409, 413)},
    )
    def post(self, request):
        params = s.EventBroadcastSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return _send(params.validated_data)


class TaskEventSendView(APIView):
    """A task's webhook: a user allowed to control runs, or the task's webhook secret."""

    permission_classes = [CanControlRunsOrWebhookSecret]

    @extend_schema(
        summary="Send an event to runs of one task (webhook)",
        request=s.EventBroadcastSerializer,
        parameters=[OpenApiParameter(
            webhook.HEADER, location=OpenApiParameter.HEADER, required=False,
            description="The task's webhook secret, instead of a user's credentials.")],
        responses={201: s.EventSerializer, 200: s.EventSerializer,
                   **_errors(400, 401, 403, 404, 409, 413)},
    )
    def post(self, request, name):
        if selectors.task_definition(name=name) is None:
            raise NotFound(f"task '{name}' is not loaded", code=ErrorCode.TASK_NOT_FOUND)
        params = s.EventBroadcastSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        _check_scope(name, data)
        return _send(data)


def _check_scope(task: str, data: dict) -> None:
    """A task's webhook sends only the events the task subscribes to, and only to its runs."""
    names = selectors.task_event_names(name=task)
    if data["name"] not in names:
        raise ValidationError({"name": [
            f"task '{task}' subscribes to no event '{data['name']}'; it subscribes to: "
            f"{', '.join(sorted(names)) or 'none'}"]})
    if data.get("run"):
        run = selectors.run_get(run_id=data["run"])
        if run is None or run.task_name != task:
            raise NotFound(f"task '{task}' has no run {data['run']}", code=ErrorCode.RUN_NOT_FOUND)
