"""SQL expressions that make PostgreSQL write values as the GraphQL API writes them (ADR 0015)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Text, case, cast, extract, func, literal, literal_column, null
from sqlalchemy.dialects.postgresql import JSON

# One JSON field of an answer: the response key, the API field it reads, and what is selected
# under it (None for a leaf). Built by the GraphQL layer from an operation, read by the services.
JsonField = tuple[str, str, "tuple[JsonField, ...] | None"]


class NotCompilable(Exception):
    """The selection asks for a field the one-statement read does not build."""


def json_object(pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """json_build_object over (key, value) pairs; keys are bound, so any response key is safe."""
    arguments: list[Any] = []
    for key, value in pairs:
        arguments.extend((literal(key, Text), value))
    return func.json_build_object(*arguments, type_=JSON)


def iso_time(column: Any) -> ColumnElement[Any]:
    """datetime.isoformat() of a timestamptz read back in UTC: microseconds only when not zero."""
    utc = func.timezone("UTC", column)
    seconds = func.to_char(utc, literal('YYYY-MM-DD"T"HH24:MI:SS'))
    fraction = case(
        (extract("microseconds", utc) % 1_000_000 == 0, literal("")),
        else_=func.to_char(utc, literal(".US")),
    )
    return seconds + fraction + literal("+00:00")  # NULL for NULL: || with NULL is NULL


def decimal_text(column: Any, places: int | None = None) -> ColumnElement[Any]:
    """A numeric as str(Decimal) writes it; `places` quantizes first (money: 2, rates: 6)."""
    value = column if places is None else func.round(column, places)
    return cast(value, Text)


def enum_name(column: Any) -> ColumnElement[Any]:
    """The GraphQL name of a stored enum value: the value in upper case (WALK_IN for walk_in), which
    holds for every enum the compiled reads write (tests/unit/test_json_sql.py)."""
    return func.upper(column)


def lookup(column: Any, table: Mapping[str, str]) -> ColumnElement[Any]:
    """A value from a fixed Python table (region names), NULL where the table has none."""
    return case(*((column == key, literal(value)) for key, value in table.items()), else_=null())


def json_array(expression: ColumnElement[Any]) -> ColumnElement[Any]:
    """A SQL array as a JSON array, [] for NULL."""
    return func.coalesce(func.to_json(expression), literal_column("'[]'::json"))
