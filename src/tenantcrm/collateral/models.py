"""The collateral and collateral_appraisals tables of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Identity, Numeric, SmallInteger, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class Collateral(TenantBase):
    __tablename__ = "collateral"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text, default="")
    region_code: Mapped[str | None] = mapped_column(Text)
    area_m2: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # The latest appraisal, kept here for lists and loan-to-value; history in the next table.
    appraised_value: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    appraised_on: Mapped[date] = mapped_column(Date)
    title_status: Mapped[str] = mapped_column(Text, default="clear")
    lien_order: Mapped[int] = mapped_column(SmallInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Appraisal(TenantBase):
    __tablename__ = "collateral_appraisals"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    collateral_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("collateral.id"))
    value: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    appraised_on: Mapped[date] = mapped_column(Date)
    appraiser: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
