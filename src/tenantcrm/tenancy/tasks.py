"""The spare-tenant pool topped up on a schedule (ADR 0014)."""

from __future__ import annotations

import logging

from tenantcrm.database import Database
from tenantcrm.jobs.worker import scheduled
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import TenantLifecycle

SCHEDULE = "tenancy.spares"
CRON = "*/5 * * * *"  # every five minutes: a burst of creates empties the pool, the full path still works

logger = logging.getLogger(__name__)


@scheduled(SCHEDULE, CRON)
async def top_up_spares(db: Database, settings: Settings) -> None:
    """Not a job per tenant: spares belong to no tenant, and one top-up runs at a time anyway (a lock)."""
    if settings.spare_tenants == 0:
        return
    pool = await TenantLifecycle(db, settings).top_up_spares(settings.spare_tenants)
    logger.info("spare tenants: %d ready, %d behind head, %d made", pool.ready, pool.behind, pool.made)
