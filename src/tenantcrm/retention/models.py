"""The retention_policies and retention_runs tables of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class RetentionPolicy(TenantBase):
    __tablename__ = "retention_policies"

    category: Mapped[str] = mapped_column(Text, primary_key=True)
    period_days: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))


class RetentionRun(TenantBase):
    __tablename__ = "retention_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    as_of: Mapped[date] = mapped_column(Date)
    trigger: Mapped[str] = mapped_column(Text)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ErasureRequest(TenantBase):
    __tablename__ = "erasure_requests"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID)
    customer_ref: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="requested")
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str] = mapped_column(Text, default="")
    executed_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    executed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    certificate: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
