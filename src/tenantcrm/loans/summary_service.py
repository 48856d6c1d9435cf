"""Rebuilding every customer's stored loan figures (ADR 0010): the CLI command and the daily job."""

from __future__ import annotations

import logging

from sqlalchemy import select

from tenantcrm.customers.models import Customer
from tenantcrm.database import Database
from tenantcrm.loans.service import refresh_summaries
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

CHUNK = 5000  # customers per transaction: each locks its customers' rows only briefly
log = logging.getLogger(__name__)


async def rebuild_summaries(db: Database, tenant: Tenant, chunk: int = CHUNK) -> int:
    """Refresh the stored figures of every customer of the tenant, `chunk` customers per
    transaction. Returns how many rows were stale (changed, added or removed): more than 0 means
    some write path did not refresh, which is a bug to find."""
    changed = 0
    after = None
    while True:
        async with tenant_session(db, tenant) as session:
            statement = select(Customer.id).order_by(Customer.id).limit(chunk)
            if after is not None:
                statement = statement.where(Customer.id > after)
            ids = list(await session.scalars(statement))
            if not ids:
                break
            changed += await refresh_summaries(session, ids)
        after = ids[-1]
    if changed:
        log.warning("loan summaries rebuilt", extra={"tenant": tenant.slug, "stale_rows": changed})
    return changed
