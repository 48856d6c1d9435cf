"""Loans, their instalments, repayments, allocations and classification history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase

MONEY = Numeric(18, 2)

loan_collateral = Table(
    "loan_collateral",
    TenantBase.metadata,
    Column("loan_id", UUID, ForeignKey("loans.id"), primary_key=True),
    Column("collateral_id", UUID, ForeignKey("collateral.id"), primary_key=True),
)


class Loan(TenantBase):
    __tablename__ = "loans"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("customers.id"))
    product: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    term_months: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(Text)
    start_date: Mapped[date] = mapped_column(Date)
    first_due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(Text, default="active")
    settled_on: Mapped[date | None] = mapped_column(Date)
    classification: Mapped[str] = mapped_column(Text, default="normal")
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InstallmentRow(TenantBase):
    """One instalment as it stands after the loan's repayments were replayed (loans.ledger)."""

    __tablename__ = "installments"

    loan_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("loans.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    due_date: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(MONEY)
    interest: Mapped[Decimal] = mapped_column(MONEY)
    principal_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    interest_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    paid_on: Mapped[date | None] = mapped_column(Date)

    @property
    def payment(self) -> Decimal:
        return self.principal + self.interest

    @property
    def outstanding(self) -> Decimal:
        return self.payment - self.principal_paid - self.interest_paid


class Repayment(TenantBase):
    __tablename__ = "repayments"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    # Entry order: two repayments on one day are applied in the order they were recorded.
    sequence: Mapped[int] = mapped_column(BigInteger, Identity())
    loan_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("loans.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    paid_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    reversal_reason: Mapped[str | None] = mapped_column(Text)


class AllocationRow(TenantBase):
    __tablename__ = "repayment_allocations"

    repayment_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("repayments.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("loans.id"))
    paid_on: Mapped[date] = mapped_column(Date)
    interest: Mapped[Decimal] = mapped_column(MONEY)
    principal: Mapped[Decimal] = mapped_column(MONEY)


class Classification(TenantBase):
    """One decision on a loan's five-category class, with the suggestion it was made against."""

    __tablename__ = "loan_classifications"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("loans.id"))
    classification: Mapped[str] = mapped_column(Text)
    previous: Mapped[str | None] = mapped_column(Text)
    suggested: Mapped[str] = mapped_column(Text)
    days_past_due: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClassificationRuleRow(TenantBase):
    __tablename__ = "classification_rules"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    classification: Mapped[str] = mapped_column(Text)
    min_days_past_due: Mapped[int | None] = mapped_column(Integer)
    flag: Mapped[str | None] = mapped_column(Text)


class CustomerLoanSummary(TenantBase):
    """A customer's live-loan figures that only writes change (t0008, loans/summary_service.py);
    a row exists exactly for customers with a live loan."""

    __tablename__ = "customer_loan_summary"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    live_loans: Mapped[int] = mapped_column(Integer)
    outstanding: Mapped[Decimal] = mapped_column(MONEY)
    oldest_unpaid_due: Mapped[date | None] = mapped_column(Date)
    classes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
