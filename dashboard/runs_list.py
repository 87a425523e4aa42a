"""The runs list (``/runs/``): the API's filters (``taskapp.api.filters.RunFilter``: task,
version, status, state, time in state) and keyset pages.

A page is read after (or before) a position in the listing's order, newest first by
``(created_at, id)`` — the order of the run indexes — never at an offset. A run's position
never changes (its creation time and id are fixed), so while runs change state, finish or
start, a page neither repeats nor skips a row: new runs appear only above the first page.
The position travels in the URL as ``<created_at ISO>_<id>``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from taskapp.api.filters import RunFilter
from taskapp.models import Run
from taskapp.selectors import runs_list

PAGE_SIZE = 50


class BadCursor(ValueError):
    def __init__(self, text: str):
        super().__init__(f"'{text[:80]}' is not a position in the runs list; "
                         "start again from the first page")


@dataclass(frozen=True, slots=True)
class Position:
    created_at: datetime
    id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.created_at.isoformat()}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> Position:
        stamp, _, ident = text.rpartition("_")
        moment = parse_datetime(stamp) if stamp else None
        try:
            run_id = uuid.UUID(ident)
        except ValueError:
            raise BadCursor(text) from None
        if moment is None:
            raise BadCursor(text)
        return cls(moment, run_id)

    @classmethod
    def of(cls, run: Run) -> Position:
        return cls(run.created_at, run.pk)


@dataclass(frozen=True, slots=True)
class Page:
    runs: list[Run]
    newer: Position | None  # the link to the page above, if there is one
    older: Position | None  # the link to the page below, if there is one


def filtered(params: QueryDict) -> tuple[QuerySet[Run], RunFilter]:
    """The runs the filters select (all of them when a filter is invalid: the form says why)."""
    filters = RunFilter(params, queryset=runs_list())
    return (filters.qs if filters.is_valid() else runs_list().none()), filters


def page(runs: QuerySet[Run], *, before: str = "", after: str = "",
         size: int | None = None) -> Page:
    """The ``size`` runs older than ``before`` (or newer than ``after``; neither: the newest)."""
    size = size or PAGE_SIZE
    if after:
        mark = Position.parse(after)
        rows = list(runs.filter(_newer(mark)).order_by("created_at", "id")[:size + 1])
        more_newer, rows = len(rows) > size, rows[:size][::-1]
        return Page(rows, Position.of(rows[0]) if rows and more_newer else None,
                    Position.of(rows[-1]) if rows else mark)
    if before:
        mark = Position.parse(before)
        runs = runs.filter(_older(mark))
    rows = list(runs.order_by("-created_at", "-id")[:size + 1])
    more_older, rows = len(rows) > size, rows[:size]
    return Page(rows, Position.of(rows[0]) if rows and before else None,
                Position.of(rows[-1]) if rows and more_older else None)


def _older(mark: Position) -> Q:
    return Q(created_at__lt=mark.created_at) | Q(created_at=mark.created_at, id__lt=mark.id)


def _newer(mark: Position) -> Q:
    return Q(created_at__gt=mark.created_at) | Q(created_at=mark.created_at, id__gt=mark.id)
