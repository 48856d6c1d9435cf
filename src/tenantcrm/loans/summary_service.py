"""Rebuilding every customer's stored loan figures (ADR 0010): the CLI command and the daily job."""

from __future__ import annotations

import logging

from sqlalchemy import select, text

from tenantcrm.customers.models import Customer
from tenantcrm.database import Database
from tenantcrm.loans.service import refresh_summary_range
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

CHUNK = 5000  # customers per transaction: each locks its customers' rows only briefly
log = logging.getLogger(__name__)


async def rebuild_summaries(db: Database, tenant: Tenant, chunk: int = CHUNK) -> int:
    """Refresh the stored figures of every customer of the tenant, a range of `chunk` customer ids
    per transaction. Returns how many rows were stale (changed, added or removed): more than 0 means
    some write path did not refresh, which is a bug to find."""
    changed = 0
    after = None
    while True:
        async with tenant_session(db, tenant) as session:
            # Per statement the plan is cheap but above the JIT threshold: compiling costs more.
            await session.execute(text("SET LOCAL jit = off"))
            last = select(Customer.id).order_by(Customer.id.desc()).limit(1)
            following = select(Customer.id).order_by(Customer.id).offset(chunk - 1).limit(1)
            if after is not None:
                following = following.where(Customer.id > after)
            upto = await session.scalar(following) or await session.scalar(last)
            if upto is None or (after is not None and upto <= after):
                break
            changed += await refresh_summary_range(session, after, upto)
        after = upto
    if changed:
        log.warning("loan summaries rebuilt", extra={"tenant": tenant.slug, "stale_rows": changed})
    return changed
