"""GraphQL of the dashboard: the portfolio in figures as of a date, in the caller's record scope."""

from __future__ import annotations

import datetime
import decimal

import strawberry
from strawberry.types import Info

from tenantcrm.customers.regions import region_name
from tenantcrm.dashboard.service import DashboardService
from tenantcrm.dashboard.service import Slice as SliceRow
from tenantcrm.graphql.common import money
from tenantcrm.graphql.context import GraphQLContext


@strawberry.type(description="Portfolio figures as of a date, within the caller's record scope.")
class DashboardKpis:
    customers: int
    outstanding: decimal.Decimal = strawberry.field(description="Outstanding principal of live loans.")
    overdue_amount: decimal.Decimal
    overdue_rate: decimal.Decimal | None = strawberry.field(
        description="Overdue amount over outstanding principal, four decimals (0.0312 is 3.12%); null "
        "without outstanding principal."
    )
    new_loans_this_month: int
    disbursed_this_month: decimal.Decimal
    follow_ups_due: int = strawberry.field(description="Open follow-ups due by asOf.")
    flagged_customers: int


@strawberry.type
class DashboardSlice:
    key: str = strawberry.field(description="A credit grade or class (lower-case), or none.")
    count: int
    amount: decimal.Decimal = strawberry.field(description="Outstanding principal; 0.00 for credit grades.")

    @classmethod
    def from_slice(cls, row: SliceRow) -> DashboardSlice:
        return cls(key=row.key, count=row.count, amount=money(row.amount))


@strawberry.type
class RegionSlice:
    code: str = strawberry.field(description="The region's code, or none.")
    name: str | None
    customers: int
    outstanding: decimal.Decimal


@strawberry.type
class MonthFigures:
    month: str = strawberry.field(description="YYYY-MM.")
    disbursed: decimal.Decimal
    overdue_amount: decimal.Decimal = strawberry.field(description="Overdue at the month's end.")


@strawberry.type
class Dashboard:
    as_of: datetime.date
    kpis: DashboardKpis
    credit_grades: list[DashboardSlice]
    classes: list[DashboardSlice] = strawberry.field(description="Live loans per five-category class.")
    regions: list[RegionSlice]
    trend: list[MonthFigures] = strawberry.field(description="The last twelve months, oldest first.")


@strawberry.type
class DashboardQueries:
    @strawberry.field(
        description="Portfolio figures as of asOf (today when left out), in the caller's scope."
    )
    async def dashboard(
        self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None
    ) -> Dashboard:
        service = DashboardService(info.context.session, info.context.principal)
        found = await info.context.run(lambda: service.dashboard(as_of))
        kpis = found.kpis
        return Dashboard(
            as_of=found.as_of,
            kpis=DashboardKpis(
                customers=kpis.customers,
                outstanding=money(kpis.outstanding),
                overdue_amount=money(kpis.overdue),
                overdue_rate=kpis.overdue_rate,
                new_loans_this_month=kpis.new_loans_this_month,
                disbursed_this_month=money(kpis.disbursed_this_month),
                follow_ups_due=kpis.follow_ups_due_today,
                flagged_customers=kpis.flagged_customers,
            ),
            credit_grades=[DashboardSlice.from_slice(row) for row in found.credit_grades],
            classes=[DashboardSlice.from_slice(row) for row in found.classes],
            regions=[
                RegionSlice(
                    code=row.key,
                    name=region_name(row.key) or None,
                    customers=row.count,
                    outstanding=money(row.amount),
                )
                for row in found.regions
            ],
            trend=[
                MonthFigures(month=p.month, disbursed=money(p.disbursed), overdue_amount=money(p.overdue))
                for p in found.trend
            ],
        )
