"""100,000 rows import: staged in chunks, committed in one transaction. SLOW (~30-50 s here)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tenantcrm.customers.models import Customer
from tenantcrm.imports.models import ImportRow
from tenantcrm.tenancy.session import tenant_session
from tests.integration.imports.sheets import people, xlsx

ROWS = 100_000


@pytest.mark.slow
async def test_100k_rows_import_through_the_engine(shop):
    """The engine under the web and the CLI, from an .xlsx of 100,000 people with one duplicate."""
    rows = people(ROWS - 1)
    rows.append(list(rows[0]))  # the last row repeats the first
    content = xlsx(rows)
    checkpoints: list[int] = []
    started = time.monotonic()

    job = await shop.run(content, "100k.xlsx", progress=lambda j: checkpoints.append(j.staged_rows))

    elapsed = time.monotonic() - started
    assert (job.status, job.valid_rows, job.duplicate_rows, job.invalid_rows) == ("done", ROWS - 1, 1, 0)
    assert job.created_rows == ROWS - 1
    assert checkpoints == list(range(2000, ROWS + 1, 2000)), "progress stored chunk by chunk"
    async with tenant_session(shop.db, shop.tenant) as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == ROWS - 1
        missing = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.national_id_bidx.is_(None))
        )
        assert missing == 0
        linked = await session.scalar(
            select(func.count()).select_from(ImportRow).where(ImportRow.customer_id.is_not(None))
        )
        assert linked == ROWS - 1
    print(f"\n100k rows imported in {elapsed:.1f} s ({ROWS / elapsed:,.0f} rows/s)")
