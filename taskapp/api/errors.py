"""The API's one error shape, and the one exception handler that produces it.

Every failure is ``{"code": ..., "message": ..., "errors": {field: [message, ...]}}`` with
the status HTTP gives it. ``code`` is stable (clients branch on it); ``message`` is for
people; ``errors`` holds field errors (empty when the failure is not about one field).

Service errors:
- ``TaskNotFound`` → 400 with a field error on ``task`` (and ``version``): the *body* named a
  task that is not loaded, which is bad input, not a missing resource. A task missing from
  the URL (``/api/tasks/{name}/``) is a 404, raised by the view.
- ``InputInvalid`` → 400, one field error per schema error, keyed ``input`` (the root) or
  ``input/<path>``.
- ``InputTooLarge``, ``EventTooLarge`` (``ValueTooLarge``) → 400 with a field error on
  ``input`` or ``data`` (an event's payload) naming the size, the limit and its setting.
- ``ValueUnstorable`` → 400 with a field error on the value's path (``input.a[0]``).
- ``RunNotFound`` → 404; ``RunConflict`` → 409.

A service the request needs being down is a 503 with ``Retry-After``
(``API_RETRY_AFTER_SECONDS``): ``database_unavailable`` when Django cannot reach or use the
database (``OperationalError``, ``InterfaceError``), ``broker_unavailable`` when Redis does
not answer. Django's own refusals that DRF does not see as its own (a body past
``DATA_UPLOAD_MAX_MEMORY_SIZE``) get the shape too, and ``handler400``/``handler404``/
``handler500`` below give it to whatever fails before or after DRF under ``/api/``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.defaults import bad_request, page_not_found, server_error
from drf_spectacular.utils import extend_schema
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from taskapp.api.parsers import RequestTooLarge
from taskapp.conf import conf
from taskapp.errorcodes import ErrorCode
from taskapp.services import (
    InputInvalid,
    RunConflict,
    RunNotFound,
    ServiceError,
    TaskNotFound,
    ValueTooLarge,
    ValueUnstorable,
)

_SERVICE_STATUS: list[tuple[type[ServiceError], int]] = [
    (TaskNotFound, status.HTTP_400_BAD_REQUEST),
    (InputInvalid, status.HTTP_400_BAD_REQUEST),
    (ValueTooLarge, status.HTTP_400_BAD_REQUEST),
    (RunNotFound, status.HTTP_404_NOT_FOUND),
    (RunConflict, status.HTTP_409_CONFLICT),
]


# Where a service's argument comes from in a request body, when the names differ.
_REQUEST_FIELD = {"payload": "data"}


def error_body(code: str, message: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: anything we recognise becomes the one shape; anything
    else is left to Django (a 500, which the tests make sure never happens for bad input)."""
    if isinstance(exc, ServiceError):
        _render_as_json(context)
        return _service(exc)
    if (unavailable := _unavailable(exc)) is not None:
        _render_as_json(context)
        return unavailable
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(int(conf.API_MAX_BODY_BYTES))
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_messages(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _api_body(exc)
    _render_as_json(context)
    return response


def _render_as_json(context: dict[str, Any]) -> None:
    """Errors are JSON whatever renderer the view chose for success (the schema's is
    ``application/vnd.oai.openapi``, YAML): DRF renders a response with the request's."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type


_UNAVAILABLE: list[tuple[tuple[type[Exception], ...], str, str]] = [
    ((OperationalError, InterfaceError), ErrorCode.DATABASE_UNAVAILABLE, "the database"),
    ((RedisConnectionError, RedisTimeoutError), ErrorCode.BROKER_UNAVAILABLE,
     "the broker (Redis)"),
]


def _unavailable(exc: Exception) -> Response | None:
    """A 503 with ``Retry-After`` when a service the request needs is down. A run is never
    created behind one: it is started in one transaction, a broker failure after the commit
    is left to the run's backstop wake-up (taskapp/dispatch.py), and the view answers with
    the run it has if the database fails after the commit (taskapp/api/runs.py)."""
    for classes, code, what in _UNAVAILABLE:
        if isinstance(exc, classes):
            seconds = int(conf.API_RETRY_AFTER_SECONDS)
            message = f"{what} is unavailable ({type(exc).__name__}): retry in {seconds}s"
            return Response(error_body(code, message), status=503,
                            headers={"Retry-After": str(seconds)})
    return None


def _service(exc: ServiceError) -> Response:
    code = next((s for cls, s in _SERVICE_STATUS if isinstance(exc, cls)), 400)
    errors: dict[str, list[str]] = {}
    if isinstance(exc, TaskNotFound):
        errors["version" if exc.version else "task"] = [str(exc)]
    elif isinstance(exc, ValueTooLarge):
        errors[_REQUEST_FIELD.get(exc.field, exc.field)] = [str(exc)]
    elif isinstance(exc, ValueUnstorable):
        errors[exc.path] = [exc.reason]
    elif isinstance(exc, InputInvalid):
        for error in exc.errors:
            key = f"input/{error['path']}" if error["path"] else "input"
            errors.setdefault(key, []).append(error["message"])
    return Response(error_body(exc.code, str(exc), errors), status=code)


def _api_body(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = next(iter(errors.items()), ("", ["invalid input"]))
        where = f"{first[0]}: " if first[0] and first[0] != "non_field_errors" else ""
        return error_body(ErrorCode.INVALID, f"{where}{first[1][0]}", errors)
    code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
    return error_body(str(code), str(exc.detail))


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b": [messages]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    items = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(item) for item in items]}


def _django_messages(exc: DjangoValidationError) -> Any:
    return exc.message_dict if hasattr(exc, "error_dict") else exc.messages


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
def not_found(request, *args, **kwargs):
    raise exceptions.NotFound(f"no API endpoint at {request.path}")


# ---------------------------------------------------------------------------- Django's handlers
# Failures outside DRF's views (a Host header Django refuses, a path no URL matches, a crash
# in a middleware) answer in the API's shape under /api/, and as Django does elsewhere.


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def handler400(request, exception=None):
    if not _is_api(request):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        too_large = RequestTooLarge(int(conf.API_MAX_BODY_BYTES))
        return JsonResponse(_api_body(too_large), status=too_large.status_code)
    return JsonResponse(error_body(ErrorCode.BAD_REQUEST, str(exception) or "bad request"),
                        status=400)


def handler404(request, exception=None):
    if not _is_api(request):
        return page_not_found(request, exception)
    return JsonResponse(error_body(ErrorCode.NOT_FOUND, f"no API endpoint at {request.path}"),
                        status=404)


def handler500(request):
    if not _is_api(request):
        return server_error(request)
    return JsonResponse(error_body(ErrorCode.SERVER_ERROR, "the server failed; it is logged"),
                        status=500)
