"""next_installments_for (the customer list's nextInstallment) against the replayed ledger's next_due:
the same instalment and paid parts for every date, through partial, late, early and reversed payments."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans import ledger as book
from tenantcrm.loans.next_due_service import next_installments_for
from tenantcrm.loans.service import LoanService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of

START = date(2025, 1, 15)
TERMS = {
    "product": "个人消费贷款",
    "amount": "120000",
    "annual_rate": "6%",
    "term_months": "12",
    "method": "equal_installment",
    "start_date": START.isoformat(),
}


@pytest.fixture(scope="module")
async def book_of_loans(lifecycle, db):
    """Loans of one officer's customer: untouched, paid late and partly, prepaid, paid off, paid in
    part before its first due date, and one whose only repayment was reversed."""
    fixture = await make_tenant(lifecycle, "nextdue")
    tenant = fixture.tenant
    officer = await principal_of(db, tenant, await add_user(db, tenant, "loan_officer"))
    async with tenant_session(db, tenant) as session:
        customer = await CustomerService(session, officer).create_customer({"name": "郑敏"})
        loans = LoanService(session, officer)
        made = {
            name: (await loans.create_loan(customer.id, {**TERMS, **terms})).id
            for name, terms in {
                "untouched": {},
                "late_partial": {"method": "equal_principal"},
                "prepaid": {},
                "paid_off": {"term_months": "3"},
                "reversed": {},
                "paid_ahead_in_part": {},
            }.items()
        }

        async def pay(name: str, amount: str, paid_on: date):
            return await loans.record_repayment(
                made[name], {"amount": amount, "paid_on": paid_on.isoformat(), "channel": "bank_transfer"}
            )

        await pay("late_partial", "1000.00", date(2025, 3, 1))
        await pay("late_partial", "15000.00", date(2025, 4, 20))
        await pay("prepaid", "40000.00", date(2025, 2, 10))
        payoff = await loans.payoff_amount(await loans.get_loan(made["paid_off"]), date(2025, 2, 1))
        await pay("paid_off", str(payoff), date(2025, 2, 1))
        await pay("paid_ahead_in_part", "5000.00", date(2025, 2, 10))
        undone = await pay("reversed", "10327.97", date(2025, 2, 15))
        await loans.reverse_repayment(undone.id, "returned")
    return fixture, officer, made


DAYS = [
    *(date(2025, month, day) for month, day in ((1, 15), (2, 9), (2, 10), (2, 14), (2, 15), (2, 16))),
    *(date(2025, month, day) for month, day in ((3, 1), (3, 2), (4, 19), (4, 20), (4, 21), (12, 31))),
    date(2026, 1, 16),
    date.today(),
    date.today() + timedelta(days=400),
]


async def test_the_next_instalment_is_the_replays_next_due_on_every_date(book_of_loans, db):
    fixture, officer, made = book_of_loans
    async with tenant_session(db, fixture.tenant) as session:
        service = LoanService(session, officer)
        loans = [await service.get_loan(loan_id) for loan_id in made.values()]
        ledgers = await service.ledgers_for(loans)
        seen_partly_paid = seen_none = 0
        for day in DAYS:
            found = await next_installments_for(session, officer, loans, day)
            for loan in loans:
                expected = book.arrears(ledgers[loan.id], day).next_due
                assert found[loan.id] == expected, (loan.id, day)
                seen_none += expected is None
                seen_partly_paid += bool(expected and expected.principal_paid + expected.interest_paid)
    # The dates reach the cases that differ: nothing left to pay, and an instalment paid in part.
    assert seen_none and seen_partly_paid


async def test_out_of_scope_loans_have_none_and_no_permission_is_refused(book_of_loans, db):
    fixture, officer, made = book_of_loans
    other = await principal_of(db, fixture.tenant, await add_user(db, fixture.tenant, "loan_officer"))
    async with tenant_session(db, fixture.tenant) as session:
        loans = [await LoanService(session, officer).get_loan(loan_id) for loan_id in made.values()]
        mine = await next_installments_for(session, officer, loans, START)
        assert mine[made["untouched"]] == book.Line(
            1, date(2025, 2, 15), Decimal("9727.97"), Decimal("600.00"), Decimal("0.00"), Decimal("0.00")
        )
        assert await next_installments_for(session, other, loans, START) == dict.fromkeys(made.values())
        assert await next_installments_for(session, officer, [], START) == {}
        nobody = dataclasses.replace(officer, permissions=frozenset())
        with pytest.raises(PermissionDenied):
            await next_installments_for(session, nobody, loans, START)
