"""The plans of common segment shapes: selective conditions reach customers through their indexes.

A tenant of its own gets a few thousand customers (set-based, a handful with the rare value each
shape looks for), then ANALYZE. The statements SegmentService really sends (count and first page)
are captured and explained (EXPLAIN (FORMAT JSON), not run); the test walks the plan and asserts
on which indexes are used, that customers is never read whole, and where the covering indexes of
t0010 answer without reading table rows (index-only scans, after VACUUM as autovacuum leaves a
table). It asserts on index usage only, never on costs or timings. bench/segments.py --explain
prints the same plans at 1,000,000 rows. Segment statements are planned for their values each time
(never a prepared statement's generic plan): checked on the server's own counters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tenantcrm.customers.models import Customer
from tenantcrm.loans.summary_service import rebuild_summaries
from tenantcrm.segments.service import SegmentService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of
from tests.integration.plans import captured, scans

CUSTOMERS = 5000
RARE_REGION = "540000"  # every 500th customer
RARE_TAG = "稀有标签"  # every 400th
RARE_PRODUCT = "稀有产品"  # the loans of every 300th


@dataclass(frozen=True)
class Book:
    tenant: Any
    admin: Any
    officer: Any  # owns every 250th customer; record scope own


@pytest.fixture(scope="module")
async def book(db, lifecycle) -> Book:
    fixture = await make_tenant(lifecycle, "plans")
    tenant = fixture.tenant
    officer_email = await add_user(db, tenant, "loan_officer")
    officer = await principal_of(db, tenant, officer_email)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text(
                """
                INSERT INTO customers (kind, name, region_code, risk_level, status, credit_grade,
                                       credit_score, tags, owner_id, last_contact_at)
                SELECT 'individual', '计划' || g,
                       CASE WHEN g % 500 = 0 THEN :region
                            ELSE (ARRAY['110000', '310000', '440300', '330100'])[1 + g % 4] END,
                       (ARRAY['low', 'low', 'medium', 'high'])[1 + g % 4],
                       (ARRAY['active', 'active', 'prospect', 'settled'])[1 + g % 4],
                       (ARRAY['AAA', 'AA', 'A', 'BBB', 'BB', 'B'])[1 + g % 6],
                       400 + g % 500,
                       CASE WHEN g % 400 = 0 THEN ARRAY[:tag] ELSE ARRAY['代发工资'] END,
                       CASE WHEN g % 250 = 0 THEN CAST(:officer AS uuid) END,
                       now() - (g % 200) * interval '1 day'
                FROM generate_series(1, :n) g
                """
            ),
            {"n": CUSTOMERS, "region": RARE_REGION, "tag": RARE_TAG, "officer": str(officer.user_id)},
        )
        await session.execute(
            text(
                """
                INSERT INTO loans (id, customer_id, product, amount, annual_rate, term_months, method,
                                   start_date, first_due_date, classification)
                SELECT gen_random_uuid(), c.id,
                       CASE WHEN row_number() OVER (ORDER BY c.id) % 300 = 0 THEN :product
                            ELSE '个人消费贷款' END,
                       100000, 0.05, 12, 'equal_installment', DATE '2025-01-15', DATE '2025-02-15',
                       'normal'
                FROM customers c WHERE c.status = 'active'
                """
            ),
            {"product": RARE_PRODUCT},
        )
    await rebuild_summaries(db, tenant)  # the loans above were written without LoanService
    # VACUUM as well: index-only scans need the visibility map that autovacuum keeps.
    async with db.admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (
            "customers",
            "loans",
            "installments",
            "risk_cases",
            "warnings",
            "users",
            "customer_loan_summary",
        ):
            await conn.execute(text(f'VACUUM ANALYZE "{tenant.schema}".{table}'))
    admin = await principal_of(db, tenant, fixture.admin_email)
    return Book(tenant, admin, officer)


async def plans_of(
    db, book: Book, principal, filter_raw: dict[str, Any], as_of: date | None = date(2026, 1, 1)
) -> list[list[tuple]]:
    """The plans of the count and first-page statements SegmentService sends for a filter (as of
    a past day: loan figures computed from the loans; None: today's, from the stored figures)."""
    with captured(db) as statements:
        async with tenant_session(db, book.tenant) as session:
            service = SegmentService(session, principal)
            await service.count(filter_raw, as_of=as_of)
            await service.customers(filter_raw, first=25, as_of=as_of)
    assert len(statements) == 2, statements
    found = []
    async with tenant_session(db, book.tenant) as session:
        conn = await session.connection()
        for statement, parameters in statements:
            result = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            document = result.scalar_one()
            plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
            found.append(list(scans(plan)))
    return found


def whole_reads(nodes: list[tuple]) -> list[tuple]:
    return [node for node in nodes if node[0] == "Seq Scan" and node[1] in ("customers", "loans")]


def reads_of(nodes: list[tuple], relation: str) -> set[tuple[str, str | None]]:
    """(node type, index) of every node that reads `relation`."""
    return {(node, index) for node, read, index in nodes if read == relation}


def indexes(nodes: list[tuple]) -> set[str]:
    return {index for _, _, index in nodes if index}


SELECTIVE = [
    pytest.param(
        {
            "and": [
                {"field": "regionCode", "op": "eq", "value": RARE_REGION},
                {"field": "riskLevel", "op": "ne", "value": "low"},
            ]
        },
        "customers_region_code",
        id="region",
    ),
    pytest.param({"field": "tags", "op": "contains", "value": RARE_TAG}, "customers_tags", id="tag"),
    pytest.param(
        {
            "and": [
                {"field": "product", "op": "eq", "value": RARE_PRODUCT},
                {"field": "kind", "op": "eq", "value": "individual"},
            ]
        },
        "loans_product_customer",
        id="product",
    ),
    pytest.param(
        {
            "and": [
                {"field": "creditScore", "op": "between", "value": [400, 401]},
                {"field": "status", "op": "eq", "value": "active"},
            ]
        },
        "customers_score_grade",
        id="score",
    ),
]


@pytest.mark.parametrize(("filter_raw", "index"), SELECTIVE)
async def test_a_selective_condition_uses_its_index(db, book: Book, filter_raw, index):
    count_plan, page_plan = await plans_of(db, book, book.admin, filter_raw)
    assert index in indexes(count_plan), count_plan
    assert whole_reads(count_plan) == [], count_plan
    assert whole_reads(page_plan) == [], page_plan


async def test_record_scope_own_reads_the_owners_customers_by_index(db, book: Book):
    # A condition matching most customers: the scope is what narrows, through the owner's index.
    count_plan, page_plan = await plans_of(
        db, book, book.officer, {"field": "tags", "op": "contains", "value": "代发工资"}
    )
    assert "customers_owner_created_at_id" in indexes(count_plan), count_plan
    assert whole_reads(count_plan) == [] and whole_reads(page_plan) == []


async def test_live_loan_conditions_of_a_past_day_probe_loans_per_customer(db, book: Book):
    # As of a past day the class is read from each customer's loans by the (customer, status,
    # class) index, never the whole loans table.
    filter_raw = {
        "and": [
            {"field": "regionCode", "op": "eq", "value": RARE_REGION},
            {"field": "classification", "op": "in", "value": ["normal", "special_mention"]},
        ]
    }
    count_plan, _ = await plans_of(db, book, book.admin, filter_raw)
    assert "customers_region_code" in indexes(count_plan), count_plan
    assert indexes(count_plan) & {"loans_customer_status", "loans_customer_id"}, count_plan
    assert whole_reads(count_plan) == [], count_plan


async def test_live_loan_conditions_probe_the_stored_figures_per_customer(db, book: Book):
    # The class of a live loan of customers in a rare region: customers by region, joined to the
    # narrow stored figures (ADR 0010, by key or by one pass over them); loans are not read.
    filter_raw = {
        "and": [
            {"field": "regionCode", "op": "eq", "value": RARE_REGION},
            {"field": "classification", "op": "in", "value": ["normal", "special_mention"]},
        ]
    }
    count_plan, _ = await plans_of(db, book, book.admin, filter_raw, as_of=None)
    assert "customers_region_code" in indexes(count_plan), count_plan
    assert "customer_loan_summary" in {relation for _, relation, _ in count_plan}, count_plan
    assert not {relation for _, relation, _ in count_plan} & {"loans", "installments"}, count_plan
    assert whole_reads(count_plan) == [], count_plan


async def test_a_selective_balance_reads_the_stored_balance_by_index(db, book: Book):
    # Few customers owe this much: the stored balance's index finds them, customers by key.
    filter_raw = {"field": "outstandingBalance", "op": "gte", "value": "99999999"}
    count_plan, page_plan = await plans_of(db, book, book.admin, filter_raw, as_of=None)
    assert ("Index Only Scan", "customer_loan_summary_outstanding_customer") in reads_of(
        count_plan, "customer_loan_summary"
    ), count_plan
    assert whole_reads(count_plan) == [] and whole_reads(page_plan) == []


BROAD = {
    "and": [
        {
            "or": [
                {"field": "creditGrade", "op": "in", "value": ["BB", "B"]},
                {"field": "creditScore", "op": "lt", "value": 700},
            ]
        },
        {"field": "outstandingBalance", "op": "between", "value": [50000, 150000]},
    ]
}


async def test_record_scope_own_answers_grade_score_and_balance_from_indexes(db, book: Book):
    # Broad conditions for one officer (shape2.own of bench/segments.py): an officer's customers lie
    # on almost every page of customers, so their grade and score come with their ids from the
    # owner's covering index, and the balance from a covering index of the stored figures; no
    # table row is read. The first page walks the same index, newest first.
    count_plan, page_plan = await plans_of(db, book, book.officer, BROAD, as_of=None)
    owners = ("Index Only Scan", "customers_owner_created_at_id")
    assert reads_of(count_plan, "customers") == {owners}, count_plan
    summary_reads = reads_of(count_plan, "customer_loan_summary")
    assert summary_reads and {node for node, _ in summary_reads} == {"Index Only Scan"}, count_plan
    assert "customers_owner_created_at_id" in indexes(page_plan), page_plan
    assert whole_reads(page_plan) == [], page_plan


async def test_score_and_grade_come_with_the_customer_id_from_one_index(db, book: Book):
    # Score and grade conditions over all customers are answered by customers_score_grade alone.
    filter_raw = {
        "and": [
            {"field": "creditScore", "op": "between", "value": [400, 401]},
            {"field": "creditGrade", "op": "ne", "value": "AAA"},
        ]
    }
    count_plan, _ = await plans_of(db, book, book.admin, filter_raw)
    assert reads_of(count_plan, "customers") == {("Index Only Scan", "customers_score_grade")}, count_plan


async def plan_counters(session) -> tuple[int, int]:
    """Generic and custom plans so far of this connection's prepared segment counts over balances."""
    row = (
        await session.execute(
            text(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
                " FROM pg_prepared_statements WHERE statement LIKE 'SELECT count(*)%outstanding%'"
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def test_segment_statements_are_planned_for_their_values(db, book: Book):
    # The driver prepares each statement once per connection. After five runs PostgreSQL may keep
    # a generic plan, costed without the values (at 1,000,000 customers it took 1.5 s instead of
    # 0.3 s for a broad balance range), so the service has each run planned for its values.
    filter_raw = {"field": "outstandingBalance", "op": "between", "value": [50000, 150000]}
    async with tenant_session(db, book.tenant) as session:
        statement = select(func.count()).select_from(Customer)
        statement = statement.where(SegmentService(session, book.admin).condition(filter_raw))
        before = await plan_counters(session)
        for _ in range(8):
            await session.scalar(statement)
        generic, _ = await plan_counters(session)
        # The same statement sent as is: the server does switch to a generic plan.
        assert generic > before[0]

    async with tenant_session(db, book.tenant) as session:
        service = SegmentService(session, book.admin)
        before = await plan_counters(session)
        for _ in range(8):
            await service.count(filter_raw)
        after = await plan_counters(session)
        assert after[0] == before[0], (before, after)
        assert after[1] >= before[1] + 8, (before, after)


def test_the_walk_sees_a_sequential_scan():
    # The check above must be able to fail: a plan reading customers whole is caught.
    plan = {"Node Type": "Aggregate", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "customers"}]}
    assert whole_reads(list(scans(plan))) == [("Seq Scan", "customers", None)]
