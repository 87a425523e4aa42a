"""Runs: start, list, read, follow (transitions, attempts), cancel, redrive, send events."""

from __future__ import annotations

import uuid

from django.db import DatabaseError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from taskapp import selectors, services
from taskapp.api import serializers as s
from taskapp.api.filters import RunFilter
from taskapp.api.pagination import HistoryCursorPagination, RunCursorPagination
from taskapp.api.permissions import CanControlRuns, CanStartRuns
from taskapp.errorcodes import ErrorCode

# Run ids are UUIDs; the URL takes any text so that a malformed one is the API's JSON 404.
RUN_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Run id.")
ERRORS = {code: OpenApiResponse(s.ErrorSerializer)
          for code in (400, 401, 403, 404, 409, 413, 503)}


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented errors: these, and 503 (the database or the broker is down) for all;
    413 for a body past API_MAX_BODY_BYTES on operations that read one."""
    return {code: ERRORS[code] for code in (*codes, 503)}


def run_id(text: str) -> uuid.UUID:
    """The run id of a URL; a 404 (not Django's HTML one) when it cannot be one."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"run {text} does not exist", code=ErrorCode.RUN_NOT_FOUND) from None


def _run_or_404(pk: str):
    run = selectors.run_get(run_id=run_id(pk))
    if run is None:
        raise NotFound(f"run {pk} does not exist", code=ErrorCode.RUN_NOT_FOUND)
    return run


class RunListView(generics.ListAPIView):
    """Runs, newest first, with a cursor that stays put while new runs arrive."""

    serializer_class = s.RunSerializer
    pagination_class = RunCursorPagination
    filterset_class = RunFilter

    def get_queryset(self):
        return selectors.runs_list()

    def get_permissions(self):
        if self.request.method == "POST":
            return [CanStartRuns()]
        return super().get_permissions()

    @extend_schema(
        summary="Start a run", request=s.RunStartSerializer,
        responses={201: s.RunSerializer, 200: OpenApiResponse(
            s.RunSerializer, description="The run this idempotency key already started."),
            **_errors(400, 401, 403, 413)},
    )
    def post(self, request):
        params = s.RunStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        run, created = services.run_start(**params.validated_data)
        try:
            run = selectors.run_get(run_id=run.pk) or run
        except DatabaseError:  # the run is committed: answer with it, not with a 503
            pass
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.RunSerializer(run).data, status=code)

    @extend_schema(summary="List runs", responses={200: s.RunSerializer(many=True),
                                                    **_errors(400, 401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunDetailView(APIView):
    @extend_schema(summary="A run", parameters=[RUN_ID],
                   responses={200: s.RunSerializer, **_errors(401, 404)})
    def get(self, request, pk):
        return Response(s.RunSerializer(_run_or_404(pk)).data)


class _RunHistoryView(generics.ListAPIView):
    pagination_class = HistoryCursorPagination
    filter_backends: list = []

    def get_queryset(self):
        return self.rows(_run_or_404(self.kwargs["pk"]))


class RunTransitionsView(_RunHistoryView):
    serializer_class = s.TransitionSerializer
    rows = staticmethod(lambda run: selectors.run_transitions(run=run))

    @extend_schema(summary="A run's transitions, oldest first", parameters=[RUN_ID],
                   responses={200: s.TransitionSerializer(many=True), **_errors(400, 401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunAttemptsView(_RunHistoryView):
    serializer_class = s.AttemptSerializer
    rows = staticmethod(lambda run: selectors.run_attempts(run=run))

    @extend_schema(summary="A run's instruction attempts, oldest first", parameters=[RUN_ID],
                   responses={200: s.AttemptSerializer(many=True), **_errors(400, 401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunCancelView(APIView):
    permission_classes = [CanControlRuns]

    @extend_schema(summary="Cancel a run", parameters=[RUN_ID], request=None,
                   responses={200: s.RunSerializer, **_errors(401, 403, 404, 409)})
    def post(self, request, pk):
        run = services.run_cancel(run_id=run_id(pk))
        return Response(s.RunSerializer(selectors.run_get(run_id=run.pk)).data)


class RunRedriveView(APIView):
    permission_classes = [CanControlRuns]

    @extend_schema(summary="Redrive a failed, timed-out or cancelled run", parameters=[RUN_ID],
                   request=s.RedriveSerializer,
                   responses={200: s.RunSerializer, **_errors(400, 401, 403, 404, 409, 413)})
    def post(self, request, pk):
        params = s.RedriveSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        run = services.run_redrive(run_id=run_id(pk), state=params.validated_data.get("state"))
        return Response(s.RunSerializer(selectors.run_get(run_id=run.pk)).data)


class RunEventsView(APIView):
    permission_classes = [CanControlRuns]

    @extend_schema(summary="Send an event to a run", parameters=[RUN_ID],
                   request=s.EventInSerializer,
                   responses={201: s.EventSerializer, 200: s.EventSerializer,
                              **_errors(400, 401, 403, 404, 409, 413)})
    def post(self, request, pk):
        params = s.EventInSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        event, created = services.event_send(
            name=data["name"], payload=data.get("data"), key=data.get("id"), run_id=run_id(pk),
            ttl=data.get("ttl"))
        return event_response(event, created)


def event_response(event, created: bool) -> Response:
    body = s.EventSerializer(event, context={"duplicate": not created}).data
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
