"""Migrate every tenant with N worker processes; each tenant is its own transaction, so a rerun resumes.

Processes, not tasks or threads: Alembic's `op` and `context` are module-level proxies bound to
one migration at a time, so two migrations may not run in one process at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from tenantcrm.settings import Settings
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.provisioning import MigrationOutcome, TenantLifecycle
from tenantcrm.tenancy.tenant import Tenant

DEFAULT_CONCURRENCY = 1  # measured: on 2 cores shared with the database, workers only add overhead

_worker_loop: asyncio.AbstractEventLoop | None = None
_worker_lifecycle: TenantLifecycle | None = None


async def migrate_all(
    lifecycle: TenantLifecycle, concurrency: int = DEFAULT_CONCURRENCY
) -> list[MigrationOutcome]:
    """Every provisioned tenant brought to head, `concurrency` at a time; outcomes by slug.

    Tenants already at head are told apart here first, so the usual deploy (nothing or few behind)
    starts no worker process: a worker's start costs more than a one-revision migration.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    target = migrations.head("tenant")
    outcomes: dict[str, MigrationOutcome] = {}
    behind: list[Tenant] = []
    tenants = await lifecycle.migratable()
    for tenant in tenants:
        version = await _version_or_unknown(lifecycle, tenant)
        if version == target:
            outcomes[tenant.slug] = MigrationOutcome(tenant.slug, "current", version, version)
        else:
            behind.append(tenant)
    if concurrency == 1 or len(behind) < 2 * concurrency:
        for tenant in behind:
            outcomes[tenant.slug] = await lifecycle._migrate_one(tenant)
    else:
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(
            max_workers=concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(lifecycle.settings, lifecycle.db.admin_url),
        ) as pool:
            futures = [loop.run_in_executor(pool, _migrate_in_worker, t) for t in behind]
            results = await asyncio.gather(*futures, return_exceptions=True)
        for tenant, result in zip(behind, results, strict=True):
            outcomes[tenant.slug] = (
                result
                if isinstance(result, MigrationOutcome)
                else MigrationOutcome(
                    tenant.slug, "failed", None, None, error=f"worker: {type(result).__name__}"
                )
            )
    return [outcomes[t.slug] for t in tenants]


async def _version_or_unknown(lifecycle: TenantLifecycle, tenant: Tenant) -> str | None:
    try:
        async with lifecycle.db.admin_engine.connect() as conn:
            return await migrations.tenant_version(conn, tenant.schema)
    except Exception:  # its migration will report what is wrong
        return None


def _start_worker(settings: Settings, admin_url: str) -> None:
    from tenantcrm.database import Database

    global _worker_loop, _worker_lifecycle
    _worker_loop = asyncio.new_event_loop()
    _worker_lifecycle = TenantLifecycle(Database.connect(settings, admin_url), settings)


def _migrate_in_worker(tenant: Tenant) -> MigrationOutcome:
    assert _worker_loop is not None and _worker_lifecycle is not None
    return _worker_loop.run_until_complete(_worker_lifecycle._migrate_one(tenant))
