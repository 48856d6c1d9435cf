"""The daily retention run and loan-summary rebuild: a schedule queueing a job per active tenant, the job."""

from __future__ import annotations

from datetime import date
from typing import Any

from tenantcrm.database import Database
from tenantcrm.jobs.queue import enqueue
from tenantcrm.jobs.worker import JobContext, job_handler, scheduled
from tenantcrm.loans.summary_service import rebuild_summaries
from tenantcrm.retention.service import run_scheduled
from tenantcrm.settings import Settings
from tenantcrm.tenancy.registry import active_tenants
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

DAILY = "retention.daily"
SCHEDULE = "retention.schedule"
CRON = "17 18 * * *"  # every day at 18:17 UTC: 02:17 in China (UTC+8), a quiet hour for our institutions


async def queue_daily_runs(db: Database, day: date | None = None) -> int:
    """One job per active tenant for the day; a tenant's job already waiting is not queued twice
    (and the job itself runs at most once per tenant and day). Returns how many were queued."""
    day = day or date.today()
    queued = 0
    for tenant in await active_tenants(db):
        job = await enqueue(
            db, DAILY, tenant.id, {"as_of": day.isoformat()}, dedupe_key=f"retention:{tenant.id}:{day}"
        )
        queued += job is not None
    return queued


@scheduled(SCHEDULE, CRON)
async def schedule_daily_runs(db: Database, settings: Settings) -> None:
    await queue_daily_runs(db)


@job_handler(DAILY)
async def daily(context: JobContext, tenant: Tenant, payload: dict[str, Any]) -> None:
    as_of = date.fromisoformat(str(payload["as_of"]))
    async with tenant_session(context.db, tenant) as session:
        await run_scheduled(session, as_of)
    # Cheap insurance for segments (ADR 0010): a write path that forgot to refresh is repaired daily.
    await rebuild_summaries(context.db, tenant)
