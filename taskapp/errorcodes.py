"""The ``code`` of every error the API answers with: stable, so programs branch on it.

Defined once here and used by the service errors (``taskapp.services.errors``), the views
that raise DRF's errors with a code of ours, and docs/api.md's table of errors (a test keeps
the table and this enum equal). Codes DRF gives its own errors are listed too, because the
API answers with them unchanged (``taskapp.api.errors``).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # 400
    INVALID = "invalid"  # a field or query parameter is wrong (DRF's ValidationError)
    PARSE_ERROR = "parse_error"  # the body is not JSON
    INPUT_INVALID = "input_invalid"  # the input fails the task's input_schema
    TASK_NOT_FOUND = "task_not_found"  # a task (or version) that is not loaded (also 404)
    INPUT_TOO_LARGE = "input_too_large"  # a run's input over MAX_INPUT_BYTES
    EVENT_TOO_LARGE = "event_too_large"  # an event's data over MAX_EVENT_BYTES
    VALUE_UNSTORABLE = "value_unstorable"  # NUL, a lone surrogate, NaN... (a service found it)
    BAD_REQUEST = "bad_request"  # refused by Django before DRF (a Host header not allowed)
    # 401, 403
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    PERMISSION_DENIED = "permission_denied"
    # 404
    NOT_FOUND = "not_found"
    RUN_NOT_FOUND = "run_not_found"
    # 405, 415
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # 409
    RUN_CONFLICT = "run_conflict"  # the run's status does not allow what was asked
    # 413
    REQUEST_TOO_LARGE = "request_too_large"  # a body past API_MAX_BODY_BYTES
    # 500, 503
    SERVER_ERROR = "server_error"  # an unexpected failure (logged)
    DATABASE_UNAVAILABLE = "database_unavailable"
    BROKER_UNAVAILABLE = "broker_unavailable"
