"""The job queue: pgqueuer's tables in their own schema, out of tenants' reach; jobs run for their
tenant; dedupe; suspended tenants wait; failures recorded without their message; the app worker."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tenantcrm.jobs.queue import QUEUE_SCHEMA, enqueue
from tenantcrm.jobs.worker import JobContext, job_handler, run_pending
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant
from tests.conftest import make_tenant

SECRET = "110105199001011234"
seen: list[tuple[str, dict[str, Any]]] = []
recorded = threading.Event()


@job_handler("test.record")
async def record(context: JobContext, tenant: Tenant, payload: dict[str, Any]) -> None:
    async with tenant_session(context.db, tenant) as session:  # a job opens its own unit of work
        schema = await session.scalar(text("SELECT current_schema()"))
    seen.append((tenant.slug, {**payload, "schema": schema}))
    recorded.set()


@job_handler("test.fail")
async def fail(context: JobContext, tenant: Tenant, payload: dict[str, Any]) -> None:
    raise ValueError(f"refused {SECRET}")


@pytest.fixture(autouse=True)
def forget_seen():
    seen.clear()
    recorded.clear()


async def test_the_queue_lives_in_its_own_schema_out_of_tenants_reach(db, tenant_a):
    async with db.admin_engine.connect() as conn:
        schemas = set(
            await conn.scalars(
                text(
                    "SELECT DISTINCT table_schema FROM information_schema.tables"
                    " WHERE table_name LIKE 'pgqueuer%'"
                )
            )
        )
    assert schemas == {QUEUE_SCHEMA}
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_session(db, tenant_a.tenant) as session:
            await session.execute(text(f"SELECT count(*) FROM {QUEUE_SCHEMA}.pgqueuer"))


async def test_jobs_run_for_their_tenant_and_a_dedupe_key_queues_one(db, settings, tenant_a, tenant_b):
    from tenantcrm.pii.keys import master_key_ring

    assert await enqueue(db, "test.record", tenant_a.tenant.id, {"n": 1}, dedupe_key="same") is not None
    assert await enqueue(db, "test.record", tenant_a.tenant.id, {"n": 2}, dedupe_key="same") is None
    await enqueue(db, "test.record", tenant_b.tenant.id, {"n": 3})
    assert await run_pending(db, master_key_ring(settings)) >= 2
    assert sorted(seen, key=lambda item: item[1]["n"]) == [
        (tenant_a.slug, {"n": 1, "schema": tenant_a.tenant.schema}),
        (tenant_b.slug, {"n": 3, "schema": tenant_b.tenant.schema}),
    ]


async def test_a_suspended_tenants_job_waits_until_it_is_resumed(db, settings, lifecycle):
    from tenantcrm.pii.keys import master_key_ring

    fixture = await make_tenant(lifecycle, "paused")
    await lifecycle.set_status(fixture.slug, "suspended")
    await enqueue(db, "test.record", fixture.tenant.id, {"n": 1})
    await run_pending(db, master_key_ring(settings))
    assert seen == []
    await lifecycle.set_status(fixture.slug, "active")
    async with db.admin_engine.begin() as conn:  # the retry's delay, passed
        await conn.execute(
            text(f"UPDATE {QUEUE_SCHEMA}.pgqueuer SET execute_after = now() WHERE status = 'queued'")
        )
    await run_pending(db, master_key_ring(settings))
    assert [slug for slug, _ in seen] == [fixture.slug]


async def test_a_failure_is_recorded_without_its_message(db, settings, tenant_a):
    from tenantcrm.pii.keys import master_key_ring

    await enqueue(db, "test.fail", tenant_a.tenant.id, {})
    await run_pending(db, master_key_ring(settings))
    async with db.admin_engine.connect() as conn:
        logged = list(
            await conn.scalars(
                text(
                    f"SELECT traceback::text FROM {QUEUE_SCHEMA}.pgqueuer_log"
                    " WHERE entrypoint = 'test.fail' AND status = 'exception'"
                )
            )
        )
    assert logged and all("ValueError" in entry and SECRET not in entry for entry in logged)


async def test_the_app_process_takes_jobs_as_they_arrive(db, settings, database_url, tenant_a):
    """`tenantcrm serve` runs a worker in the app (TENANTCRM_RUN_JOBS, on by default there)."""
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from tenantcrm.app import create_app

    app = create_app(replace(settings, run_jobs=True), database_url)
    async with AsyncTestClient(app) as client:  # runs the lifespan: bootstrap, then the worker
        assert (await client.get("/healthz")).status_code == 200
        await enqueue(db, "test.record", tenant_a.tenant.id, {"n": 7})
        # The app runs in the test client's own thread, hence a thread-safe mark; the bound guards a hang.
        assert await asyncio.to_thread(recorded.wait, 30)
    assert seen == [(tenant_a.slug, {"n": 7, "schema": tenant_a.tenant.schema})]
