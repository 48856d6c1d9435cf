"""The customer table of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Numeric, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantcrm.auth.models import User
from tenantcrm.tenancy.models import TenantBase


class Customer(TenantBase):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(Text)
    monthly_income: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    risk_level: Mapped[str] = mapped_column(Text, default="low")
    status: Mapped[str] = mapped_column(Text, default="prospect")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("teams.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    owner: Mapped[User | None] = relationship(User, lazy="raise")
