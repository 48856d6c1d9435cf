"""Each loan's next instalment as of a date, read as one row per loan instead of a replayed schedule."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.permissions import CUSTOMERS_READ, Principal
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import in_customer_scope
from tenantcrm.loans import ledger as book
from tenantcrm.loans.models import AllocationRow, InstallmentRow, Loan


def still_owed(installment: Any, as_of: date) -> list[ColumnElement[bool]]:
    """Where an instalment (a table or alias of InstallmentRow) is a candidate for the next one as
    of a date: due then or later, owing something, and not fully paid by then."""
    return [
        installment.due_date >= as_of,
        installment.principal + installment.interest > 0,
        or_(installment.paid_on.is_(None), installment.paid_on > as_of),
    ]


def paid_as_of(installment: Any, part: Any, as_of: date) -> ColumnElement[Any]:
    """The instalment's stored paid part (`part` is AllocationRow.principal or .interest) less what
    was allocated to it after the date: what had been paid by then."""
    stored = installment.principal_paid if part is AllocationRow.principal else installment.interest_paid
    later = (
        select(func.coalesce(func.sum(part), 0))
        .where(
            AllocationRow.loan_id == installment.loan_id,
            AllocationRow.number == installment.number,
            AllocationRow.paid_on > as_of,
        )
        .scalar_subquery()
    )
    return stored - later


async def next_installments_for(
    session: AsyncSession, principal: Principal, loans: Sequence[Loan], as_of: date
) -> dict[uuid.UUID, book.Line | None]:
    """`book.arrears(ledger, as_of).next_due` of many loans (already read in scope) in one query.

    The stored schedule is the replay of every repayment: an instalment's paid_on is the day it
    became fully paid, its paid parts everything allocated to it. So the next one as of a date is
    the first due on or after it, owing something, and not fully paid by then; its paid parts as
    of then are the stored ones less what was allocated to it after that date. A customer's list
    reads this row per loan, not every instalment and allocation of every loan.
    """
    principal.require(CUSTOMERS_READ)
    found: dict[uuid.UUID, book.Line | None] = {loan.id: None for loan in loans}
    if not found:
        return found
    upcoming = in_customer_scope(
        select(InstallmentRow)
        .join(Loan, Loan.id == InstallmentRow.loan_id)
        .join(Customer, Customer.id == Loan.customer_id),
        principal,
    )
    upcoming = (
        upcoming.where(InstallmentRow.loan_id.in_(list(found)), *still_owed(InstallmentRow, as_of))
        .order_by(InstallmentRow.loan_id, InstallmentRow.number)
        .ext(distinct_on(InstallmentRow.loan_id))
        .subquery()
    )
    rows = await session.execute(
        select(
            upcoming.c.loan_id,
            upcoming.c.number,
            upcoming.c.due_date,
            upcoming.c.principal,
            upcoming.c.interest,
            paid_as_of(upcoming.c, AllocationRow.principal, as_of),
            paid_as_of(upcoming.c, AllocationRow.interest, as_of),
        )
    )
    for loan_id, *line in rows:
        found[loan_id] = book.Line(*line)
    return found
