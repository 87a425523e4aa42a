"""Statements built once for the writes every step makes: the store's hot path.

``QuerySet.update`` and ``bulk_create`` compile their SQL anew on every call. In the step10
profile (bench/RESULTS.md) the guarded UPDATE of a run and the INSERTs of its transition and
attempt rows spent more time in Django building statements than in PostgreSQL running them
(~0.5 ms of Python a commit). Here each statement's text is built once per model and set of
columns, and only its parameters are adapted per call, by the model's fields themselves
(``get_db_prep_save``), so every backend receives exactly the values the ORM would send.

Only writes of a fixed shape live here; the rest of the store keeps the ORM. ``claim_run``
is the claim's compare-and-swap and the read of the claimed row in one statement
(``UPDATE … RETURNING``, PostgreSQL and SQLite ≥ 3.35): the ORM spent an UPDATE and a
SELECT.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from taskapp import models


def update(model: type[Model], values: Mapping[str, Any], where: Mapping[str, Any]) -> int:
    """``UPDATE`` ``model``'s rows matching every ``where`` column (equality) with
    ``values``; returns how many rows changed. Keys are field names or attnames."""
    sets, wheres = tuple(values), tuple(where)
    statement, preps = _update_statement(model, sets, wheres, connection.vendor)
    params = [value if prep is None else prep(value, connection) for prep, value in
              zip(preps, (*values.values(), *where.values()), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def insert(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` ``rows`` (every one with the same keys, in the same order) in one
    statement. The model's primary key must be the database's to fill."""
    if not rows:
        return
    names = tuple(rows[0])
    statement, preps = _insert_statement(model, names, len(rows), connection.vendor)
    params = [row[name] if prep is None else prep(row[name], connection)
              for row in rows for name, prep in zip(names, preps, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


# Fields whose Python values the database drivers take as they are: adapting them through
# the field (``get_db_prep_save``) only checked and copied them, at ~2 µs a value. A value
# of the wrong type is still refused by the driver or the database.
_PLAIN = frozenset({"CharField", "TextField", "IntegerField", "PositiveIntegerField",
                    "PositiveSmallIntegerField", "PositiveBigIntegerField", "BigIntegerField",
                    "SmallIntegerField", "FloatField", "BooleanField"})
Prep = Callable[[Any, Any], Any] | None


def _preps(fields: Sequence[Field]) -> tuple[Prep, ...]:
    """How each field's values become parameters: None for as they are."""
    return tuple(None if f.get_internal_type() in _PLAIN else f.get_db_prep_save
                 for f in fields)


@functools.lru_cache(maxsize=64)
def _update_statement(model: type[Model], sets: tuple[str, ...], wheres: tuple[str, ...],
                      vendor: str) -> tuple[str, tuple[Prep, ...]]:
    quote = connection.ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in (*sets, *wheres))
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields[:len(sets)])
    conditions = " AND ".join(f"{quote(f.column)} = %s" for f in fields[len(sets):])
    return (f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {conditions}",
            _preps(fields))


@functools.lru_cache(maxsize=64)
def _insert_statement(model: type[Model], names: tuple[str, ...], count: int,
                      vendor: str) -> tuple[str, tuple[Prep, ...]]:
    quote = connection.ops.quote_name
    fields = tuple(model._meta.get_field(name) for name in names)
    columns = ", ".join(quote(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "
            + ", ".join([row] * count), _preps(fields))


def claim_run(*, run_id: object, owner: str, now: object, expires: object,
              statuses: Sequence[str]) -> models.Run | None:
    """Take ``run_id``'s lease for ``owner`` until ``expires`` if its status is one of
    ``statuses``, it is due to start and nobody holds it (no lease, or an expired one); a
    claim counts towards ``crashes`` until the step ends cleanly. Returns the claimed row,
    or None when it was not taken."""
    statement = _claim_statement(len(statuses), connection.vendor)
    field = models.Run._meta.get_field
    at, until = (field("claimed_at").get_db_prep_save(t, connection) for t in (now, expires))
    params = [owner, until, until, at, field("id").get_db_prep_save(run_id, connection),
              *statuses, at, at]
    rows = list(models.Run.objects.raw(statement, params))
    return rows[0] if rows else None


@functools.lru_cache(maxsize=8)
def _claim_statement(statuses: int, vendor: str) -> str:
    quote = connection.ops.quote_name
    table = quote(models.Run._meta.db_table)
    listed = ", ".join(["%s"] * statuses)
    return (f"UPDATE {table} SET lease_owner = %s, lease_expires_at = %s, wake_at = %s, "
            f"version = version + 1, crashes = crashes + 1, claimed_at = %s "
            f"WHERE id = %s AND status IN ({listed}) "
            f"AND (lease_expires_at IS NULL OR lease_expires_at < %s) "
            f"AND (start_at IS NULL OR start_at <= %s) RETURNING *")
