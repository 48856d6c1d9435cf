"""Test helpers for query plans: capture the statements the app engine sends, walk an EXPLAIN plan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def captured(db, reading: str = "customers") -> Iterator[list[tuple[str, Any]]]:
    """The statements (with parameters) the app engine sends that mention `reading`."""
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if reading in statement and "set_config" not in statement:
            statements.append((statement, parameters))

    engine = db.app_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def scans(plan: dict[str, Any]) -> Iterator[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every node of a plan, subplans included."""
    yield plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name")
    for child in plan.get("Plans", ()):
        yield from scans(child)
