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
- ``RunNotFound`` → 404; ``RunConflict`` (and ``RunNotActive``) → 409.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from taskapp.services import (
    DefinitionConflict,
    InputInvalid,
    RunConflict,
    RunNotFound,
    ServiceError,
    TaskNotFound,
    ValueTooLarge,
)

_SERVICE_STATUS: list[tuple[type[ServiceError], int]] = [
    (TaskNotFound, status.HTTP_400_BAD_REQUEST),
    (InputInvalid, status.HTTP_400_BAD_REQUEST),
    (ValueTooLarge, status.HTTP_400_BAD_REQUEST),
    (RunNotFound, status.HTTP_404_NOT_FOUND),
    (RunConflict, status.HTTP_409_CONFLICT),
    (DefinitionConflict, status.HTTP_409_CONFLICT),
]


# Where a service's argument comes from in a request body, when the names differ.
_REQUEST_FIELD = {"payload": "data"}


def error_body(code: str, message: str, errors: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: anything we recognise becomes the one shape; anything
    else is left to Django (a 500, which the tests make sure never happens for bad input)."""
    if isinstance(exc, ServiceError):
        return _service(exc)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_messages(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _api_body(exc)
    return response


def _service(exc: ServiceError) -> Response:
    code = next((s for cls, s in _SERVICE_STATUS if isinstance(exc, cls)), 400)
    errors: dict[str, list[str]] = {}
    if isinstance(exc, TaskNotFound):
        errors["version" if exc.version else "task"] = [str(exc)]
    elif isinstance(exc, ValueTooLarge):
        errors[_REQUEST_FIELD.get(exc.field, exc.field)] = [str(exc)]
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
        return error_body("invalid", f"{where}{first[1][0]}", errors)
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
