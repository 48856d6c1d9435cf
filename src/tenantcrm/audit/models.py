"""Tenant-schema tables of the audit log (created by tenant migrations t0002 and t0009).

`audit_events` is append-only: the tenant role holds no UPDATE, DELETE or TRUNCATE on it and a
trigger refuses UPDATE from anyone, and DELETE of any event no checkpoint covers. `audit_chain_head`
is the single row (id = 1) that names the last event's sequence number and hash; locking it
serialises a tenant's audited writes. `audit_checkpoints` (read-only to the tenant role, written
by the `audit_prune` function alone) records each prefix that retention removed (ADR 0011).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, LargeBinary, SmallInteger, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase

HEAD_ID = 1


class AuditEvent(TenantBase):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditChainHead(TenantBase):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditCheckpoint(TenantBase):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)
    prev_seq: Mapped[int] = mapped_column(BigInteger)
    events_removed: Mapped[int] = mapped_column(BigInteger)
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[uuid.UUID] = mapped_column(UUID)
    actor: Mapped[str] = mapped_column(Text)
    row_hash: Mapped[bytes] = mapped_column(LargeBinary)
