"""The timeline's paging cursor: only what the service itself could have made is taken."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "cursor", ["9999-12-31T23:59:59-14:00|x", "0001-01-01T00:00:00+14:00|x", "2026-01-01T00:00:00|x", "x|y"]
)
def test_timeline_cursors_it_could_not_have_made_are_ignored(cursor):
    from tenantcrm.timeline.service import parse_before

    assert parse_before(cursor) is None


def test_a_cursor_the_service_made_is_taken() -> None:
    from datetime import UTC, datetime

    from tenantcrm.timeline.service import parse_before

    assert parse_before("2026-12-01T08:30:00+00:00|interaction:42") == (
        datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
        "interaction:42",
    )
