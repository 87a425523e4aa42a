"""Requests to ``/api/`` that carry NUL (``%00``) in the path, the query string or a header
are answered here, before any view: PostgreSQL refuses NUL in any text it is sent, so a task
name, a filter or a token holding one was a 500 from the database.

A path with NUL names nothing (404); a query parameter or header with one is bad input (400).
Both in the API's error shape."""

from __future__ import annotations

from django.http import JsonResponse

from taskapp.api.errors import error_body
from taskapp.errorcodes import ErrorCode

NUL = "\x00"


class RefuseNul:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # "/api" without its slash too: "/api%00/" is a path to the API's index with NUL in it.
        if request.path_info.startswith("/api"):
            refused = _refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)


def _refusal(request) -> JsonResponse | None:
    if NUL in request.path_info:
        return JsonResponse(error_body(
            ErrorCode.NOT_FOUND, "no API endpoint at a path holding NUL (%00)"), status=404)
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return _bad("query parameter", name.replace(NUL, "%00"))
    for key, value in request.META.items():
        if key.startswith(("HTTP_", "CONTENT_")) and isinstance(value, str) and NUL in value:
            return _bad("header", key.removeprefix("HTTP_").replace("_", "-").title())
    return None


def _bad(what: str, name: str) -> JsonResponse:
    message = f"the {what} {name} holds NUL (%00), which nothing here can hold"
    return JsonResponse(error_body(ErrorCode.INVALID, message, {name: [message]}), status=400)
