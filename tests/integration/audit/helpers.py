"""Shared helpers of the audit tests: seeding events and editing rows as the superuser."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tenantcrm.audit.service import record
from tenantcrm.database import Database
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant


async def seed_events(db: Database, tenant: Tenant, count: int, *, label: str = "system:test") -> list[int]:
    """`count` events recorded by a system actor in one tenant transaction."""
    async with tenant_session(db, tenant) as session:
        return [
            await record(
                session,
                actor=None,
                actor_label=label,
                action="update",
                entity_type="customer",
                entity_id=f"c-{n}",
                changes={"n": n, "name": {"from": f"客户{n}", "to": f"客户{n}号"}},
            )
            for n in range(1, count + 1)
        ]


async def superuser_edit(db: Database, tenant: Tenant, statement: str, **params: Any) -> None:
    """Run `statement` (with {events} for the table) as the admin with the append-only trigger off."""
    table = f'"{tenant.schema}".audit_events'
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER audit_events_append_only"))
        await conn.execute(text(statement.format(events=table)), params)
        await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER audit_events_append_only"))
