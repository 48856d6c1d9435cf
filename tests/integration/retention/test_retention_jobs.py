"""The daily retention run: the schedule is registered with pgqueuer's scheduler, queues one job
per active tenant and day, and the job runs the enabled policies at most once per day."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import func, select, text

from tenantcrm.customers.models import Customer
from tenantcrm.jobs.queue import QUEUE_SCHEMA
from tenantcrm.jobs.worker import run_pending, run_scheduler
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.retention.models import RetentionRun
from tenantcrm.retention.tasks import CRON, SCHEDULE, queue_daily_runs
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant, principal_of
from tests.integration.retention.helpers import enable_all, seed_customer


async def test_the_daily_job_runs_enabled_policies_once_per_tenant_and_day(db, settings, lifecycle):
    enabled = await make_tenant(lifecycle, "retjob")
    idle = await make_tenant(lifecycle, "retidle")  # no policy enabled: the job writes nothing
    admin = await principal_of(db, enabled.tenant, enabled.admin_email)
    prospect = await seed_customer(db, settings, enabled.tenant, admin)
    await enable_all(db, enabled.tenant, admin, action="delete")
    ring = master_key_ring(settings)
    today = date.today()

    assert await queue_daily_runs(db, today) >= 2
    assert await queue_daily_runs(db, today) == 0  # still waiting: not queued twice
    await run_pending(db, ring)
    assert await queue_daily_runs(db, today) >= 2  # done: queued again, yet it will not run twice
    await run_pending(db, ring)

    async with tenant_session(db, enabled.tenant) as session:
        runs = list(await session.scalars(select(RetentionRun)))
        gone = await session.get(Customer, prospect.id) is None
    assert gone and len(runs) == 1
    assert (runs[0].trigger, runs[0].as_of, runs[0].actor) == ("schedule", today, "system:retention")
    assert runs[0].counts["prospects"]["count"] == 1
    async with tenant_session(db, idle.tenant) as session:
        assert await session.scalar(select(func.count()).select_from(RetentionRun)) == 0


async def test_the_app_process_registers_the_daily_schedule(db, settings):
    stop = asyncio.Event()
    stop.set()  # the scheduler records its schedules, then stops at once
    await run_scheduler(db, settings, stop=stop)
    async with db.admin_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    f"SELECT entrypoint, expression FROM {QUEUE_SCHEMA}.pgqueuer_schedules"
                    " WHERE entrypoint = :e"
                ),
                {"e": SCHEDULE},
            )
        ).all()
    assert [tuple(r) for r in rows] == [(SCHEDULE, CRON)]
