"""customer_loan_summary: every LoanService write leaves it equal to a fresh computation, and
segments give the same counts from it as from the loans themselves."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select, update

from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.ledger import BUCKETS
from tenantcrm.loans.models import (
    AllocationRow,
    Classification,
    CustomerLoanSummary,
    InstallmentRow,
    Loan,
    Repayment,
)
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService, summary_rows_sql
from tenantcrm.loans.summary_service import rebuild_summaries
from tenantcrm.segments.filter import compile_filter, parse_filter
from tenantcrm.segments.service import SegmentService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant, principal_of


def terms(months_ago: int, product: str = "消费贷") -> dict[str, str]:
    return {
        "product": product,
        "amount": "120000",
        "annual_rate": "6%",
        "term_months": "12",
        "method": "equal_installment",
        "start_date": add_months(date.today(), -months_ago).isoformat(),
    }


def paid(amount: str, on: date | None = None) -> dict[str, str]:
    return {"amount": amount, "paid_on": (on or date.today()).isoformat(), "channel": "bank_transfer"}


async def stored_and_fresh(session) -> tuple[dict, dict]:
    stored = {
        row.customer_id: (row.live_loans, row.outstanding, row.oldest_unpaid_due, sorted(row.classes))
        for row in await session.scalars(select(CustomerLoanSummary))
    }
    everyone = list(await session.scalars(select(Customer.id)))
    fresh = {
        row.customer_id: (row.live_loans, row.outstanding, row.oldest_unpaid_due, sorted(row.classes))
        for row in (await session.execute(summary_rows_sql(everyone))).all()
    }
    return stored, fresh


@pytest.fixture(scope="module")
async def shop(lifecycle, db):
    fixture = await make_tenant(lifecycle, "summ")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    return fixture.tenant, admin


async def test_every_loan_write_refreshes_the_customers_stored_figures(db, shop):
    tenant, admin = shop
    steps: list[str] = []

    async def check(step: str) -> dict:
        async with tenant_session(db, tenant) as session:
            stored, fresh = await stored_and_fresh(session)
        assert stored == fresh, step
        steps.append(step)
        return stored

    async with tenant_session(db, tenant) as session:
        customer = await CustomerService(session, admin).create_customer({"name": "汇总"})
    async with tenant_session(db, tenant) as session:
        loan = await LoanService(session, admin).create_loan(customer.id, terms(4))
    rows = await check("create_loan")
    assert rows[customer.id][0:2] == (1, Decimal("120000.00"))
    first_due = rows[customer.id][2]
    assert first_due is not None and first_due < date.today()

    async with tenant_session(db, tenant) as session:
        (repayment,) = await LoanService(session, admin).record_repayments(loan.id, [paid("10327.97")])
    rows = await check("record_repayments")
    assert rows[customer.id][1] < Decimal("120000.00") and rows[customer.id][2] > first_due

    async with tenant_session(db, tenant) as session:
        await LoanService(session, admin).reverse_repayment(repayment.id, "录入错误")
    rows = await check("reverse_repayment")
    assert rows[customer.id][1:3] == (Decimal("120000.00"), first_due)

    async with tenant_session(db, tenant) as session:
        await LoanService(session, admin).classify(loan.id, "substandard", "逾期未还款")
    rows = await check("classify")
    assert rows[customer.id][3] == ["substandard"]

    async with tenant_session(db, tenant) as session:
        await LoanService(session, admin).set_flags(loan.id, ["restructured"])
    await check("set_flags")

    async with tenant_session(db, tenant) as session:
        service = LoanService(session, admin)
        payoff = await service.payoff_amount(await service.get_loan(loan.id))
        await service.record_repayment(loan.id, paid(str(payoff)))
    rows = await check("record_repayment settling")
    assert customer.id not in rows  # settled: no live loan, no row
    async with tenant_session(db, tenant) as session:
        assert await session.scalar(select(Loan.status).where(Loan.id == loan.id)) == "settled"
    assert len(steps) == 6


async def test_the_rebuild_repairs_a_row_a_write_left_stale_and_reports_it(db, shop):
    tenant, admin = shop
    async with tenant_session(db, tenant) as session:
        customer = await CustomerService(session, admin).create_customer({"name": "重建"})
        loan = await LoanService(session, admin).create_loan(customer.id, terms(2))
    async with tenant_session(db, tenant) as session:
        # A write path that forgot to refresh: the loan changes, the row does not.
        await session.execute(update(Loan).where(Loan.id == loan.id).values(classification="doubtful"))
        await session.execute(
            delete(CustomerLoanSummary).where(CustomerLoanSummary.customer_id != customer.id)
        )
        stored, fresh = await stored_and_fresh(session)
        assert stored != fresh
    assert await rebuild_summaries(db, tenant, chunk=1) == 1
    async with tenant_session(db, tenant) as session:
        stored, fresh = await stored_and_fresh(session)
    assert stored == fresh and stored[customer.id][3] == ["doubtful"]
    assert await rebuild_summaries(db, tenant) == 0


@pytest.fixture(scope="module")
async def book(lifecycle, db):
    """Overdue, partly paid, paid early, reversed, settled, classed and two-loan customers, and one
    without loans."""
    fixture = await make_tenant(lifecycle, "sumbook")
    tenant = fixture.tenant
    admin = await principal_of(db, tenant, fixture.admin_email)
    plan = {
        "overdue": [(6, [], False, None)],
        "partial": [(3, ["5000"], False, None)],
        "early": [(2, ["31000"], False, None)],
        "reversed": [(2, ["20655.94"], True, None)],
        "settled": [(1, ["payoff"], False, None)],
        "classed": [(0, [], False, "special_mention"), (8, ["10327.97"], False, "loss")],
        "two": [(13, [], False, None), (1, ["10327.97"], False, "substandard")],
        "none": [],
    }
    async with tenant_session(db, tenant) as session:
        people = {
            name: (await CustomerService(session, admin).create_customer({"name": name})).id for name in plan
        }
    for name, loans in plan.items():
        for months_ago, payments, reverse, classification in loans:
            async with tenant_session(db, tenant) as session:
                service = LoanService(session, admin)
                loan = await service.create_loan(people[name], terms(months_ago, product=name))
                for amount in payments:
                    if amount == "payoff":
                        amount = str(await service.payoff_amount(loan))
                    repayment = await service.record_repayment(loan.id, paid(amount))
                    if reverse:
                        await service.reverse_repayment(repayment.id, "退回款项")
                if classification:
                    await service.classify(loan.id, classification, "人工认定")
    return tenant, admin, people


def cond(field: str, op: str, value) -> dict:
    return {"field": field, "op": op, "value": value}


COMPARED = [
    *(cond("daysPastDue", op, n) for op in ("gt", "gte", "lt", "lte", "eq", "ne") for n in (0, 1, 30, 100)),
    cond("daysPastDue", "between", [1, 60]),
    cond("daysPastDue", "between", [0, 400]),
    *(cond("arrearsBucket", op, bucket) for op in ("eq", "ne") for bucket in BUCKETS),
    cond("arrearsBucket", "in", ["current", "91-180", "360+"]),
    *(
        cond("outstandingBalance", op, amount)
        for op in ("gt", "gte", "lt", "lte", "eq", "ne")
        for amount in ("0", "100000", "120000")
    ),
    cond("outstandingBalance", "between", ["0", "110000"]),
    cond("outstandingBalance", "between", ["100000", "250000"]),
    *(cond("classification", op, c) for op in ("eq", "ne") for c in ("normal", "loss", "substandard")),
    cond("classification", "in", ["special_mention", "loss"]),
    {"not": {"and": [cond("daysPastDue", "gt", 0), cond("classification", "eq", "normal")]}},
    {"or": [cond("outstandingBalance", "lt", "50000"), cond("arrearsBucket", "eq", "current")]},
]


async def test_stored_and_computed_figures_give_the_same_segments(db, book):
    tenant, admin, _ = book
    today = date.today()
    counts: list[int] = []
    async with tenant_session(db, tenant) as session:
        stored, fresh = await stored_and_fresh(session)
        assert stored == fresh and len(stored) == 6  # all but the settled and the loanless
        for raw in COMPARED:
            node = parse_filter(raw)
            by_summary = await SegmentService(session, admin).count(raw)  # as of today: stored
            computed = await session.scalar(
                select(func.count()).select_from(Customer).where(compile_filter(node, today, stored=False))
            )
            assert by_summary == computed, raw
            counts.append(computed)
    assert len(set(counts)) >= 5  # the comparisons split the customers many ways


async def test_the_stored_path_is_used_for_today_only(db, book):
    tenant, admin, _ = book
    service_sql = {}
    async with tenant_session(db, tenant) as session:
        service = SegmentService(session, admin)
        raw = cond("daysPastDue", "gt", 0)
        for label, day in (("today", None), ("earlier", date(2020, 1, 1))):
            service_sql[label] = str(service.condition(raw, day))
        # Before any loan started nobody was late; today the overdue ones are.
        assert await service.count(raw, date(2020, 1, 1)) == 0
        assert await service.count(raw) >= 3
    assert "customer_loan_summary" in service_sql["today"]
    assert "customer_loan_summary" not in service_sql["earlier"]


async def test_deleting_a_customer_deletes_its_row(db, book):
    tenant, _, people = book
    async with tenant_session(db, tenant) as session:
        loan_ids = select(Loan.id).where(Loan.customer_id == people["overdue"])
        # What retention's delete does for a customer and its loans, in short.
        for table in (AllocationRow, InstallmentRow, Repayment, Classification):
            await session.execute(delete(table).where(table.loan_id.in_(loan_ids)))
        await session.execute(delete(Loan).where(Loan.customer_id == people["overdue"]))
        await session.execute(delete(Customer).where(Customer.id == people["overdue"]))
        assert (
            await session.scalar(
                select(func.count()).where(CustomerLoanSummary.customer_id == people["overdue"])
            )
            == 0
        )
        await session.rollback()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_the_refresh_command_repairs_stale_rows(db, book, settings, database_url):
    tenant, _, people = book
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    async with tenant_session(db, tenant) as session:
        await session.execute(
            update(CustomerLoanSummary)
            .where(CustomerLoanSummary.customer_id == people["early"])
            .values(outstanding=Decimal("1.00"))
        )
    done = await asyncio.to_thread(run_cli, env, "segments", "refresh", tenant.slug)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{tenant.slug}: stored loan figures rebuilt, 1 rows were stale"
    async with tenant_session(db, tenant) as session:
        stored, fresh = await stored_and_fresh(session)
    assert stored == fresh and stored[people["early"]][1] > Decimal("1.00")
    refused = await asyncio.to_thread(run_cli, env, "segments", "refresh", "no-such-tenant")
    assert refused.returncode == 1 and refused.stderr.startswith("error:")
