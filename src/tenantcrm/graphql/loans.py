"""GraphQL types and queries of loans: the schedule calculator (parse, compute, return)."""

from __future__ import annotations

import datetime
import decimal
import enum

import strawberry
from strawberry.types import Info

from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import PublicError, camel
from tenantcrm.loans.schedule import InvalidTerms, build_schedule


@strawberry.enum
class RepaymentMethod(enum.Enum):
    EQUAL_INSTALLMENT = "equal_installment"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY = "interest_only"
    BULLET = "bullet"


@strawberry.type
class ScheduledInstallment:
    number: int
    due_date: datetime.date
    principal: decimal.Decimal
    interest: decimal.Decimal
    payment: decimal.Decimal
    balance_after: decimal.Decimal


@strawberry.type(description="A repayment schedule to the cent; the last instalment absorbs rounding.")
class LoanSchedule:
    installments: list[ScheduledInstallment]
    total_interest: decimal.Decimal
    total_payment: decimal.Decimal


@strawberry.type
class LoanQueries:
    @strawberry.field(
        description="The schedule of a loan before it is saved. annualRate is a fraction: 0.049 for 4.9%."
    )
    def loan_schedule(
        self,
        info: Info[GraphQLContext, None],
        amount: decimal.Decimal,
        annual_rate: decimal.Decimal,
        term_months: int,
        method: RepaymentMethod,
        start_date: datetime.date,
    ) -> LoanSchedule:
        # Pure computation: no database, no tenant data; any authenticated caller may ask.
        try:
            schedule = build_schedule(amount, annual_rate, term_months, method.value, start_date)
        except InvalidTerms as invalid:
            raise PublicError(f"{camel(invalid.field)}: {invalid}") from None
        return LoanSchedule(
            installments=[
                ScheduledInstallment(
                    number=row.number,
                    due_date=row.due_date,
                    principal=row.principal,
                    interest=row.interest,
                    payment=row.payment,
                    balance_after=row.balance_after,
                )
                for row in schedule.installments
            ],
            total_interest=schedule.total_interest,
            total_payment=schedule.total_payment,
        )
