"""Migrate every tenant with N worker processes; each tenant is its own transaction, so a rerun resumes.

Processes, not tasks or threads: Alembic's `op` and `context` are module-level proxies bound to
one migration at a time, so two migrations may not run in one process at once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import MigrationOutcome, TenantLifecycle
from tenantcrm.tenancy.tenant import Tenant

DEFAULT_CONCURRENCY = 4

_worker_loop: asyncio.AbstractEventLoop | None = None
_worker_lifecycle: TenantLifecycle | None = None


async def migrate_all(
    lifecycle: TenantLifecycle, concurrency: int = DEFAULT_CONCURRENCY
) -> list[MigrationOutcome]:
    """Every provisioned tenant brought to head, `concurrency` at a time; outcomes by slug."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    tenants = await lifecycle.migratable()
    if concurrency == 1 or len(tenants) <= 1:
        return [await lifecycle._migrate_one(t) for t in tenants]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max_workers=min(concurrency, len(tenants)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(lifecycle.settings, lifecycle.db.admin_url),
    ) as pool:
        futures = [loop.run_in_executor(pool, _migrate_in_worker, t) for t in tenants]
        results = await asyncio.gather(*futures, return_exceptions=True)
    return [
        result
        if isinstance(result, MigrationOutcome)
        else MigrationOutcome(tenant.slug, "failed", None, None, error=f"worker: {type(result).__name__}")
        for tenant, result in zip(tenants, results, strict=True)
    ]


def _start_worker(settings: Settings, admin_url: str) -> None:
    from tenantcrm.database import Database

    global _worker_loop, _worker_lifecycle
    _worker_loop = asyncio.new_event_loop()
    _worker_lifecycle = TenantLifecycle(Database.connect(settings, admin_url), settings)


def _migrate_in_worker(tenant: Tenant) -> MigrationOutcome:
    assert _worker_loop is not None and _worker_lifecycle is not None
    return _worker_loop.run_until_complete(_worker_lifecycle._migrate_one(tenant))
