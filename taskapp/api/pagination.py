"""Cursor pagination of runs: pages stay put while new runs arrive (a cursor is a position
in the ordering, not an offset)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

from taskapp.api.filters import ORDERINGS
from taskapp.api.params import whole_number


class _StrictCursorPagination(CursorPagination):
    """A bad ``cursor`` or ``page_size`` is a 400 naming it, not a 404 or a silent default."""

    page_size_query_param = "page_size"

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        return whole_number(text, name=self.page_size_query_param, low=1,
                            high=self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound as exc:  # a cursor we did not make is bad input, not a 404
            raise exceptions.ValidationError({"cursor": [str(exc.detail)]}) from None


class RunCursorPagination(_StrictCursorPagination):
    """Newest first by ``created_at``; ``?ordering=-updated_at`` orders by last transition."""

    page_size = 50
    max_page_size = 500
    ordering = ("-created_at", "-id")

    def get_ordering(self, request, queryset, view):
        chosen = request.query_params.get("ordering")
        if chosen in ORDERINGS:
            return (chosen, f"{'-' if chosen.startswith('-') else ''}id")
        return self.ordering


class HistoryCursorPagination(_StrictCursorPagination):
    """A run's transitions or attempts, oldest first."""

    page_size = 100
    max_page_size = 1000
    ordering = ("id",)
