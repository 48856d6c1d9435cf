"""Risk cases, their measures, early-warning rules and the flags they raise."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Identity, Numeric, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class RiskCase(TenantBase):
    __tablename__ = "risk_cases"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("customers.id"))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("loans.id"))
    trigger: Mapped[str] = mapped_column(Text)
    warning_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="open")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    opened_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(Text, default="")
    lessons: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RiskMeasure(TenantBase):
    __tablename__ = "risk_measures"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("risk_cases.id"))
    description: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default="planned")
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def overdue(self, today: date) -> bool:
        return self.status in ("planned", "in_progress") and self.due_on < today


class WarningRule(TenantBase):
    __tablename__ = "warning_rules"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    threshold: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class EarlyWarning(TenantBase):
    __tablename__ = "warnings"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    case_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("risk_cases.id"))
