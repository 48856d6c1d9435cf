"""Shared helpers of the audit tests: seeding events and editing rows as the superuser."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tenantcrm.audit.service import event_hash, record
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


async def seed_aged_events(
    db: Database,
    tenant: Tenant,
    ages_in_days: Sequence[int],
    *,
    refs: Mapping[int, tuple[str, str]] | None = None,
) -> None:
    """Append one event per age, dated that many days ago, hashed and chained as record() does
    (record() only writes the present). `refs` names the (entity_type, entity_id) of the event at
    a 0-based position; the others are about customer "c-<seq>"."""
    now = datetime.now(UTC)
    async with tenant_session(db, tenant) as session:
        head = (await session.execute(text("SELECT seq, hash FROM audit_chain_head FOR UPDATE"))).one()
        seq, prev = head.seq, bytes(head.hash)
        for position, age in enumerate(ages_in_days):
            seq += 1
            at = now - timedelta(days=age, seconds=-position)
            entity_type, entity_id = (refs or {}).get(position, ("customer", f"c-{seq}"))
            event = dict(
                seq=seq,
                at=at,
                actor_id=None,
                actor="system:test",
                action="update",
                entity_type=entity_type,
                entity_id=entity_id,
                changes={"n": seq},
            )
            digest = event_hash(prev, **event)
            await session.execute(
                text(
                    "INSERT INTO audit_events (seq, at, actor_id, actor, action, entity_type, entity_id,"
                    " changes, prev_hash, hash) VALUES (:seq, :at, :actor_id, :actor, :action, :entity_type,"
                    " :entity_id, CAST(:changes AS jsonb), :prev, :hash)"
                ),
                {**event, "changes": json.dumps(event["changes"]), "prev": prev, "hash": digest},
            )
            prev = digest
        await session.execute(
            text("UPDATE audit_chain_head SET seq = :seq, hash = :hash WHERE id = 1"),
            {"seq": seq, "hash": prev},
        )


async def superuser_edit(db: Database, tenant: Tenant, statement: str, **params: Any) -> None:
    """Run `statement` (with {events} and {checkpoints} for the tables) as the admin with the
    append-only triggers off."""
    events = f'"{tenant.schema}".audit_events'
    checkpoints = f'"{tenant.schema}".audit_checkpoints'
    triggers = ((events, "audit_events_append_only"), (checkpoints, "audit_checkpoints_append_only"))
    async with db.admin_engine.begin() as conn:
        for table, trigger in triggers:
            await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
        await conn.execute(text(statement.format(events=events, checkpoints=checkpoints)), params)
        for table, trigger in triggers:
            await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))
