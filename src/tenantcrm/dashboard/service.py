"""DashboardService: the portfolio in figures, as the viewer's record scope sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Select, and_, column, func, literal_column, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.permissions import CUSTOMERS_READ, Principal
from tenantcrm.contacts.models import FollowUp
from tenantcrm.customers.inputs import CREDIT_GRADES
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import in_customer_scope
from tenantcrm.loans.ledger import CLASSES
from tenantcrm.loans.models import AllocationRow, InstallmentRow, Loan
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import outstanding_principal_sql, overdue_amount_sql
from tenantcrm.risk.models import EarlyWarning

ZERO = Decimal("0.00")
LIVE = ("active", "written_off")
TREND_MONTHS = 12


@dataclass(frozen=True, slots=True)
class Kpis:
    customers: int
    outstanding: Decimal
    overdue: Decimal
    new_loans_this_month: int
    disbursed_this_month: Decimal
    follow_ups_due_today: int
    flagged_customers: int

    @property
    def overdue_rate(self) -> Decimal | None:
        """Overdue amount over outstanding principal (0.0312 is 3.12%)."""
        return (self.overdue / self.outstanding).quantize(Decimal("0.0001")) if self.outstanding else None


@dataclass(frozen=True, slots=True)
class Slice:
    key: str
    count: int
    amount: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class MonthPoint:
    month: str  # YYYY-MM
    disbursed: Decimal
    overdue: Decimal


@dataclass(frozen=True, slots=True)
class Dashboard:
    as_of: date
    kpis: Kpis
    credit_grades: list[Slice]
    classes: list[Slice]
    regions: list[Slice]
    trend: list[MonthPoint]


class DashboardService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _loans(self, *columns: Any) -> Select[Any]:
        return in_customer_scope(
            select(*columns).select_from(Loan).join(Customer, Customer.id == Loan.customer_id), self.principal
        )

    async def dashboard(self, as_of: date | None = None) -> Dashboard:
        self.principal.require(CUSTOMERS_READ)
        today = as_of or date.today()
        return Dashboard(
            as_of=today,
            kpis=await self.kpis(today),
            credit_grades=await self.credit_grades(),
            classes=await self.classes(today),
            regions=await self.regions(today),
            trend=await self.trend(today),
        )

    async def kpis(self, today: date) -> Kpis:
        self.principal.require(CUSTOMERS_READ)
        customers = await self.session.scalar(
            in_customer_scope(select(func.count()).select_from(Customer), self.principal)
        )
        outstanding, overdue = (
            await self.session.execute(
                self._loans(
                    func.coalesce(func.sum(outstanding_principal_sql(today)), 0),
                    func.coalesce(func.sum(overdue_amount_sql(today)), 0),
                ).where(Loan.status.in_(LIVE))
            )
        ).one()
        month_start = today.replace(day=1)
        new_count, new_amount = (
            await self.session.execute(
                self._loans(func.count(), func.coalesce(func.sum(Loan.amount), 0)).where(
                    Loan.start_date >= month_start, Loan.start_date <= today, Loan.status != "cancelled"
                )
            )
        ).one()
        due_today = await self.session.scalar(
            in_customer_scope(
                select(func.count())
                .select_from(FollowUp)
                .join(Customer, Customer.id == FollowUp.customer_id)
                .where(FollowUp.done_at.is_(None), FollowUp.due_on <= today),
                self.principal,
            )
        )
        flagged = await self.session.scalar(
            in_customer_scope(
                select(func.count(func.distinct(EarlyWarning.customer_id)))
                .select_from(EarlyWarning)
                .join(Customer, Customer.id == EarlyWarning.customer_id)
                .where(EarlyWarning.cleared_at.is_(None)),
                self.principal,
            )
        )
        return Kpis(
            customers=int(customers or 0),
            outstanding=Decimal(outstanding),
            overdue=Decimal(overdue),
            new_loans_this_month=int(new_count),
            disbursed_this_month=Decimal(new_amount),
            follow_ups_due_today=int(due_today or 0),
            flagged_customers=int(flagged or 0),
        )

    async def credit_grades(self) -> list[Slice]:
        """Customers per credit grade (ungraded as "none")."""
        self.principal.require(CUSTOMERS_READ)
        grade = func.coalesce(Customer.credit_grade, "none")
        rows = await self.session.execute(
            in_customer_scope(select(grade, func.count()).group_by(grade).order_by(grade), self.principal)
        )
        order = {grade: rank for rank, grade in enumerate(CREDIT_GRADES)}
        slices = [Slice(key, int(count)) for key, count in rows.all()]
        return sorted(slices, key=lambda s: order.get(s.key, len(order)))  # AAA first, ungraded last

    async def classes(self, today: date) -> list[Slice]:
        """Live loans per five-category class: count and outstanding principal."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.execute(
            self._loans(Loan.classification, func.count(), func.sum(outstanding_principal_sql(today)))
            .where(Loan.status.in_(LIVE))
            .group_by(Loan.classification)
        )
        slices = [Slice(key, int(count), Decimal(amount or 0)) for key, count, amount in rows.all()]
        return sorted(slices, key=lambda s: CLASSES.index(s.key) if s.key in CLASSES else len(CLASSES))

    async def regions(self, today: date) -> list[Slice]:
        """Customers and outstanding principal per region, largest exposure first."""
        self.principal.require(CUSTOMERS_READ)
        region = func.coalesce(Customer.region_code, "none")
        exposure = (
            select(func.coalesce(func.sum(outstanding_principal_sql(today)), 0))
            .where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE))
            .correlate(Customer)
            .scalar_subquery()
        )
        per_customer = in_customer_scope(
            select(region.label("region"), exposure.label("amount")), self.principal
        )
        inner = per_customer.subquery()
        rows = await self.session.execute(
            select(inner.c.region, func.count(), func.sum(inner.c.amount))
            .group_by(inner.c.region)
            .order_by(func.sum(inner.c.amount).desc(), inner.c.region)
        )
        return [Slice(key, int(count), Decimal(amount or 0)) for key, count, amount in rows.all()]

    async def trend(self, today: date) -> list[MonthPoint]:
        """For each of the last twelve months: amount disbursed in it, overdue at its end."""
        self.principal.require(CUSTOMERS_READ)
        first = add_months(today.replace(day=1), -(TREND_MONTHS - 1))
        month_of = func.to_char(Loan.start_date, literal_column("'YYYY-MM'"))
        disbursed = dict(
            (
                await self.session.execute(
                    self._loans(month_of, func.sum(Loan.amount))
                    .where(Loan.start_date >= first, Loan.status != "cancelled")
                    .group_by(month_of)
                )
            ).all()
        )
        months = [add_months(first, index) for index in range(TREND_MONTHS)]
        ends = [min(add_months(month, 1) - timedelta(days=1), today) for month in months]
        overdue = await self._overdue_at(ends)
        points = [
            MonthPoint(key := month.strftime("%Y-%m"), Decimal(disbursed.get(key) or 0), overdue[end])
            for month, end in zip(months, ends, strict=True)
        ]
        return points

    async def _overdue_at(self, days: list[date]) -> dict[date, Decimal]:
        """Overdue amount (due before the day, not paid by it) at each day, in two statements
        whatever the number of days: what was due, less what was paid of it."""
        on = values(column("day", Date), name="days").data([(day,) for day in days])
        due = await self.session.execute(
            in_customer_scope(
                select(on.c.day, func.sum(InstallmentRow.principal + InstallmentRow.interest))
                .select_from(on)
                .join(InstallmentRow, InstallmentRow.due_date < on.c.day)
                .join(Loan, and_(Loan.id == InstallmentRow.loan_id, Loan.start_date <= on.c.day))
                .join(Customer, Customer.id == Loan.customer_id)
                .group_by(on.c.day),
                self.principal,
            )
        )
        paid = await self.session.execute(
            in_customer_scope(
                select(on.c.day, func.sum(AllocationRow.principal + AllocationRow.interest))
                .select_from(on)
                .join(AllocationRow, AllocationRow.paid_on <= on.c.day)
                .join(
                    InstallmentRow,
                    and_(
                        InstallmentRow.loan_id == AllocationRow.loan_id,
                        InstallmentRow.number == AllocationRow.number,
                        InstallmentRow.due_date < on.c.day,
                    ),
                )
                .join(Loan, and_(Loan.id == AllocationRow.loan_id, Loan.start_date <= on.c.day))
                .join(Customer, Customer.id == Loan.customer_id)
                .group_by(on.c.day),
                self.principal,
            )
        )
        totals = dict.fromkeys(days, ZERO)
        for day, amount in due.all():
            totals[day] += Decimal(amount)
        for day, amount in paid.all():
            totals[day] -= Decimal(amount)
        return totals
