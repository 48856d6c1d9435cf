"""The customer table of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Integer, LargeBinary, Numeric, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantcrm.auth.models import User
from tenantcrm.tenancy.models import TenantBase


class PiiAccess(TenantBase):
    """One revealed field of one customer: who, when, why (written before the value is shown)."""

    __tablename__ = "pii_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID)
    field: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)


class Customer(TenantBase):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(Text)
    monthly_income: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    gender: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[date | None] = mapped_column(Date)
    marital_status: Mapped[str | None] = mapped_column(Text)
    occupation: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    assets: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    liabilities: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    credit_score: Mapped[int | None] = mapped_column(Integer)
    credit_grade: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    source: Mapped[str | None] = mapped_column(Text)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    key_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by every logged interaction: "not contacted for N days" and segments read it.
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a retention run removed the personal data (the row stays for statistics).
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    risk_level: Mapped[str] = mapped_column(Text, default="low")
    status: Mapped[str] = mapped_column(Text, default="prospect")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("teams.id"))
    # PII: AES-GCM ciphertexts (pii.cipher), masked forms for display, blind indexes for search.
    national_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_id_masked: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(Text)
    email_masked: Mapped[str | None] = mapped_column(Text)
    address_masked: Mapped[str | None] = mapped_column(Text)
    national_id_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    pii_key_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    owner: Mapped[User | None] = relationship(User, lazy="raise")

    @property
    def debt_to_income(self) -> Decimal | None:
        """Liabilities over a year's income (a ratio, 0.35 for 35%), when both are known."""
        if self.liabilities is None or not self.monthly_income:
            return None
        return (self.liabilities / (self.monthly_income * 12)).quantize(Decimal("0.0001"))
