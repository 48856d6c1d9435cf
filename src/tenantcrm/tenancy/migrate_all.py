"""Migrate every tenant; each tenant is its own transaction, so a failure stays its own and a rerun resumes.

Serially (the default) every tenant behind is migrated on ONE admin connection, a transaction each,
with Alembic's revisions read once for the run: per tenant only its own DDL, grants, key check and
registry update reach the database. With --concurrency N > 1, N worker processes do the same.
Processes, not tasks or threads: Alembic's `op` and `context` are module-level proxies bound to
one migration at a time, so two migrations may not run in one process at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tenantcrm.settings import Settings
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.provisioning import MigrationOutcome, TenantLifecycle, failed_outcome
from tenantcrm.tenancy.tenant import Tenant

DEFAULT_CONCURRENCY = 1  # measured: on 2 cores shared with the database, workers only add overhead

_worker_loop: asyncio.AbstractEventLoop | None = None
_worker_lifecycle: TenantLifecycle | None = None
_worker_migrator: migrations.Migrator | None = None


async def migrate_all(
    lifecycle: TenantLifecycle,
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    using: migrations.Migrator | None = None,
) -> list[MigrationOutcome]:
    """Every provisioned tenant brought to head, `concurrency` at a time; outcomes by slug.

    Tenants already at head are told apart first, by one query over every schema's own version
    table, so the usual deploy (nothing or few behind) opens no transaction per tenant and starts
    no worker process. `using` replaces the shipped revisions (the bench adds one of its own).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    migrator = using or migrations.migrator("tenant")
    tenants = await lifecycle.migratable()
    async with lifecycle.db.admin_engine.connect() as conn, conn.begin():
        versions = await migrations.tenant_versions(conn, [t.id for t in tenants])
    outcomes: dict[str, MigrationOutcome] = {}
    behind: list[Tenant] = []
    for tenant in tenants:
        version = versions[tenant.id]
        if version == migrator.head:
            outcomes[tenant.slug] = MigrationOutcome(tenant.slug, "current", version, version)
        else:
            behind.append(tenant)
    if concurrency == 1 or len(behind) < 2 * concurrency:
        outcomes.update(await _migrate_serially(lifecycle, behind, versions, migrator))
    else:
        outcomes.update(await _migrate_in_workers(lifecycle, behind, concurrency, migrator))
    return [outcomes[t.slug] for t in tenants]


async def _migrate_serially(
    lifecycle: TenantLifecycle,
    tenants: list[Tenant],
    versions: dict[str, str | None],
    migrator: migrations.Migrator,
) -> dict[str, MigrationOutcome]:
    outcomes: dict[str, MigrationOutcome] = {}
    if not tenants:
        return outcomes
    lifecycle.ring()  # a missing master key fails here once, not once per tenant
    engine = lifecycle.db.admin_engine
    conn = await engine.connect()
    try:
        for tenant in tenants:
            before = versions[tenant.id]
            try:
                async with conn.begin():
                    after = await lifecycle.migrate_in(conn, tenant.id, tenant.schema, migrator)
                outcomes[tenant.slug] = MigrationOutcome(tenant.slug, "migrated", before, after)
            except Exception as exc:  # rolled back; the others go on, on a fresh connection
                outcomes[tenant.slug] = failed_outcome(tenant, before, exc)
                await conn.close()
                conn = await engine.connect()
    finally:
        await conn.close()
    return outcomes


async def _migrate_in_workers(
    lifecycle: TenantLifecycle, tenants: list[Tenant], concurrency: int, migrator: migrations.Migrator
) -> dict[str, MigrationOutcome]:
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max_workers=concurrency,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(lifecycle.settings, lifecycle.db.admin_url, migrator.extra_versions),
    ) as pool:
        futures = [loop.run_in_executor(pool, _migrate_in_worker, t) for t in tenants]
        results = await asyncio.gather(*futures, return_exceptions=True)
    return {
        tenant.slug: (
            result
            if isinstance(result, MigrationOutcome)
            else MigrationOutcome(tenant.slug, "failed", None, None, error=f"worker: {type(result).__name__}")
        )
        for tenant, result in zip(tenants, results, strict=True)
    }


def _start_worker(settings: Settings, admin_url: str, extra_versions: Path | None) -> None:
    from tenantcrm.database import Database

    global _worker_loop, _worker_lifecycle, _worker_migrator
    _worker_loop = asyncio.new_event_loop()
    _worker_lifecycle = TenantLifecycle(Database.connect(settings, admin_url), settings)
    _worker_migrator = migrations.Migrator("tenant", extra_versions)


def _migrate_in_worker(tenant: Tenant) -> MigrationOutcome:
    assert _worker_loop is not None and _worker_lifecycle is not None and _worker_migrator is not None
    return _worker_loop.run_until_complete(_worker_lifecycle._migrate_one(tenant, _worker_migrator))
