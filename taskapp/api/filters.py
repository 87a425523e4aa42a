"""The run listing's query parameters (django-filter), documented in the OpenAPI schema."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import django_filters as filters
from django import forms
from django.db.models import QuerySet
from django.utils.dateparse import parse_duration as parse_iso_duration
from django_filters.fields import ChoiceField, IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from engine.language import parse_duration
from taskapp import models
from taskapp.conf import conf

ORDERINGS = ["-created_at", "created_at", "-updated_at", "updated_at"]


def _invalid(message: str, text: str) -> forms.ValidationError:
    """An error quoting the request: the text goes in ``params``, because django-filter
    formats every message with ``%`` (a ``%`` in the text was a TypeError, a 500)."""
    return forms.ValidationError(message, params={"text": text})


def _given(value: object) -> None:
    """A parameter sent empty (``?version=``) is refused, not read as absent: the schema
    gives it a type, and an empty time or number is none of them."""
    if value == "":
        raise forms.ValidationError("empty: give a value or leave the parameter out")


class DurationField(forms.CharField):
    """Seconds (``3600``), the task language's durations (``1h``, ``90m``, ``1d12h``) or
    ISO 8601 (``PT1H``)."""

    def to_python(self, value: str) -> timedelta | None:
        _given(value)
        text = super().to_python(value).strip()
        if not text:
            return None
        duration = _duration(text)
        try:
            datetime.now() - duration  # noqa: B018 - a too large duration fails here, not later
        except OverflowError:
            raise _invalid("duration '%(text)s' is too long", text) from None
        return duration


def _duration(text: str) -> timedelta:
    if text.upper().startswith("P"):
        try:
            iso = parse_iso_duration(text)
        except OverflowError:  # P99999999999D: Django builds the timedelta unchecked
            raise _invalid("duration '%(text)s' is too long", text) from None
        if iso is None or iso < timedelta(0):
            raise _invalid("bad ISO 8601 duration '%(text)s'", text)
        return iso
    try:
        return parse_duration(float(text) if _number(text) else text)
    except (ValueError, OverflowError) as exc:
        raise _invalid("%(text)s", str(exc)) from None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@extend_schema_field({"type": "string", "example": "1h"})
class DurationFilter(filters.Filter):
    field_class = DurationField


class UtcDateTimeField(IsoDateTimeField):
    """ISO 8601, in UTC before it reaches the database: PostgreSQL refuses offsets beyond
    ±15:59 that Python accepts (+16:08 was a 500 before)."""

    def to_python(self, value):
        _given(value)
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("this time is out of range") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class VersionField(forms.CharField):
    """A task version: 1 to 2**31 - 1 in ASCII digits (``forms.IntegerField`` took Unicode
    digits, and 20 digits reached the database as an integer it could not hold)."""

    def __init__(self, **kwargs):
        super().__init__(strip=False, **kwargs)  # " 5" is not a version either

    def to_python(self, value: str) -> int | None:
        _given(value)
        text = super().to_python(value)
        if not text:
            return None
        if not _VERSION.fullmatch(text) or not 1 <= int(text) < 2**31:
            raise forms.ValidationError("a whole number from 1 to 2147483647 (ASCII digits)")
        return int(text)


_VERSION = re.compile(r"[0-9]{1,10}")


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 2**31 - 1})
class IntegerFilter(filters.NumberFilter):
    field_class = VersionField


class GivenChoiceField(ChoiceField):
    """One of the choices; sent empty (``?ordering=``) it is refused like the other typed
    parameters, where django-filter would read it as absent."""

    def to_python(self, value):
        _given(value)
        return super().to_python(value)


class GivenChoiceFilter(filters.ChoiceFilter):
    field_class = GivenChoiceField


class RunFilter(filters.FilterSet):
    task = filters.CharFilter(field_name="task_name", help_text="Task name.")
    version = IntegerFilter(field_name="task_version", help_text="Task version.")
    # distinct=False: django-filter adds DISTINCT for multiple choices in case of joins; a
    # run has one status, and DISTINCT made PostgreSQL sort every matching row.
    status = filters.MultipleChoiceFilter(
        choices=models.Run.Status.choices, distinct=False,
        help_text="Status; repeat for several.")
    state = filters.CharFilter(help_text="Current state.")
    in_state_longer_than = DurationFilter(
        method="_in_state_longer_than",
        help_text="In its current state for more than this: seconds, 30m, 1h, 2d or PT1H.")
    in_state_shorter_than = DurationFilter(
        method="_in_state_shorter_than",
        help_text="In its current state for less than this: seconds, 30m, 1h, 2d or PT1H.")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    finished_after = UtcDateTimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = UtcDateTimeFilter(field_name="finished_at", lookup_expr="lt")
    # Read by the cursor pagination (taskapp.api.pagination); declared here to be validated
    # and documented with the other parameters.
    ordering = GivenChoiceFilter(
        choices=[(o, o) for o in ORDERINGS], method="_ordering",
        help_text="created_at: by creation; updated_at: by last transition. Default -created_at.")

    class Meta:
        model = models.Run
        fields: list[str] = []

    def _in_state_longer_than(self, queryset: QuerySet, name: str, value: timedelta) -> QuerySet:
        return queryset.filter(state_entered_at__lt=conf.clock.now() - value)

    def _in_state_shorter_than(self, queryset: QuerySet, name: str, value: timedelta) -> QuerySet:
        return queryset.filter(state_entered_at__gt=conf.clock.now() - value)

    def _ordering(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset
