"""The queue's tables (pgqueuer, in their own schema) and enqueueing a job for a tenant."""

from __future__ import annotations

import functools
import json
from typing import Any

import asyncpg
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.qb import (
    QueryBuilderEnvironment,
    QueryQueueBuilder,
    QuerySchedulerBuilder,
)
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.domain.settings import DBSettings
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantcrm.database import Database

QUEUE_SCHEMA = "queue"
# NOTIFY channels are database-wide: a name of our own, so another pgqueuer user cannot wake us.
CHANNEL = "tenantcrm_jobs"


@functools.cache
def queue_settings() -> DBSettings:
    """Every object schema-qualified, so the app role's connections need no schema path of their own."""
    return DBSettings(db_schema=QUEUE_SCHEMA, channel=CHANNEL, prefix="")


def queries_for(connection: asyncpg.Connection) -> Queries:
    settings = queue_settings()
    return Queries(
        AsyncpgDriver(connection),
        qbe=QueryBuilderEnvironment(settings=settings),
        qbq=QueryQueueBuilder(settings=settings),
        qbs=QuerySchedulerBuilder(settings=settings),
    )


async def install_queue(conn: AsyncConnection) -> None:
    """Create the queue schema and tables, or bring them to this pgqueuer's version (admin, bootstrap)."""
    raw = await conn.get_raw_connection()
    queries = queries_for(raw.driver_connection)
    if not await queries.schema_is_installed():
        await queries.install()
        return
    for statement in (await queries.plan_upgrade()).statements:
        await queries.driver.execute(statement)


def encode(tenant_id: str, payload: dict[str, Any]) -> bytes:
    # Ids and choices only: a job row is readable by every app process, so never any PII.
    return json.dumps({"tenant_id": tenant_id, "payload": payload}, separators=(",", ":")).encode()


async def enqueue(
    db: Database, entrypoint: str, tenant_id: str, payload: dict[str, Any], *, dedupe_key: str | None = None
) -> int | None:
    """Queue a job for a tenant; with `dedupe_key`, not while one with that key is still waiting
    or running (None is returned then). Runs on a pooled app connection outside any tenant
    transaction: tenant roles have no right on the queue's schema."""
    async with db.app_engine.connect() as conn:
        raw = await conn.get_raw_connection()
        queries = queries_for(raw.driver_connection)
        (job_id,) = await queries.enqueue(
            entrypoint, encode(tenant_id, payload), dedupe_key=dedupe_key, on_conflict="skip"
        )
    return None if job_id is None else int(job_id)
