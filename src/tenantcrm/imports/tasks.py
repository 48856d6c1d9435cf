"""The import's background steps as queue jobs, and queueing them."""

from __future__ import annotations

from typing import Any

from tenantcrm.database import Database
from tenantcrm.imports import service
from tenantcrm.imports.models import ImportJob
from tenantcrm.jobs.queue import enqueue
from tenantcrm.jobs.worker import JobContext, job_handler
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.tenant import Tenant

STAGE = "imports.stage"
COMMIT = "imports.commit"


def _dedupe_key(tenant: Tenant, job: ImportJob) -> str:
    # One queued run per import at a time: a second "resume" click while one waits adds nothing.
    return f"import:{tenant.id}:{job.id}"


async def queue_staging(db: Database, tenant: Tenant, job: ImportJob) -> None:
    await enqueue(db, STAGE, tenant.id, {"job_id": str(job.id)}, dedupe_key=_dedupe_key(tenant, job))


async def queue_commit(db: Database, tenant: Tenant, job: ImportJob) -> None:
    await enqueue(db, COMMIT, tenant.id, {"job_id": str(job.id)}, dedupe_key=_dedupe_key(tenant, job))


@job_handler(STAGE)
async def stage(context: JobContext, tenant: Tenant, payload: dict[str, Any]) -> None:
    cipher = cipher_source(context.db, context.ring, tenant)
    try:
        await service.stage(context.db, cipher, tenant, payload["job_id"])
    except Exception:
        await service.mark_interrupted(context.db, tenant, payload["job_id"])
        raise


@job_handler(COMMIT)
async def commit(context: JobContext, tenant: Tenant, payload: dict[str, Any]) -> None:
    cipher = cipher_source(context.db, context.ring, tenant)
    try:
        await service.commit(context.db, cipher, tenant, payload["job_id"])
    except Exception:
        await service.mark_interrupted(context.db, tenant, payload["job_id"])
        raise
