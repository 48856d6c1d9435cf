"""What a segment costs over 1,000,000 customers in one tenant: count and first page, against plain SQL.

    .venv/bin/python bench/segments.py --customers 1000000 [--runs 10] [--explain]

Builds ONE tenant in a scratch database with N customers (default 1,000,000) and their book,
set-based (INSERT ... SELECT over generate_series, run as the tenant role in tenant_session):

- 8 teams, 50 loan officers spread over them, plus the tenant's admin;
- customers: 90 % individuals; status 60 % active, 25 % prospects, 10 % settled, 5 % closed;
  regions skewed towards the big cities (Shanghai about 6 %); risk 70 / 22 / 8 % low / medium /
  high; credit score around 690 with its grade; incomes 3,000-100,000 skewed low; tags (VIP 5 %);
  owners round-robin over the officers (2 % unowned) with their teams; last contact within half a
  year (10 % never); created over five years. PII columns stay NULL (no ciphertexts, masks or
  blind indexes): segments never read them, and encrypting a million rows would only slow the seed;
- loans: one per active customer and a second for half of them (about 1.5 per active customer),
  one settled loan per settled customer; products by kind; about 6 % of live loans overdue (more
  for riskier customers) by 1-720 days, their class following the days (special mention,
  substandard, doubtful, loss) and 1 % worse than normal for other reasons (restructured);
- each live loan's history is collapsed into a short ledger that the arrears SQL reads like a
  real one: instalment 1 (what has been repaid so far, paid on its due date, with its repayment
  and allocation), the overdue instalment if any (unpaid), and the next one (unpaid, due within a
  month);
- the stored per-customer loan figures (customer_loan_summary, ADR 0010) rebuilt by
  `rebuild_summaries` as the daily job does, timed;
- live early-warning flags (days past due) for customers more than 30 days overdue, and open risk
  cases for about a third of those more than 60 days overdue.

Then measures three segment shapes through SegmentService (count, then the first page of 25) as
the admin (record scope all) and as one officer (scope own), p50/p99 over --runs runs (default
10) after --warmup runs, against the same filter written by hand in SQL (the reference) in the same run, with
the runs of both interleaved. Each run is its own tenant transaction. The counts of service and
reference must agree, or the run stops. Target (issue 8): ratio <= 1.3 and p50 < 300 ms.
With --explain it prints the plans (EXPLAIN ANALYZE) of the statements the service runs, to
stderr. Prints the results as JSON and merges them into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

from common import (
    RESULTS_PATH,
    Result,
    Scratch,
    add_kept_database_arguments,
    drop_kept_database,
    kept_or_scratch_database,
    latency_result,
    mark_kept,
    write_results,
)
from sqlalchemy import event, text

from tenantcrm.auth.service import principal_for_user
from tenantcrm.database import Database
from tenantcrm.loans.summary_service import rebuild_summaries
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

TARGET_RATIO = 1.3
TARGET_P50_MS = 300
PAGE = 25
SLUG = "bench-segments"
ADMIN_EMAIL = f"admin@{SLUG}.example"
OFFICERS = 50
TEAMS = 8

# Big cities first: the seed draws from the front of this list more often.
REGION_CODES = (
    "440300 310000 110000 440100 330100 320100 510100 420100 500000 320500 610100 370200 350200 "
    "430100 410100 340100 210100 210200 330200 350100 370100 441900 120000 130000 140000 150000 "
    "220000 230000 360000 450000 460000 520000 530000 540000 620000 630000 640000 650000"
).split()
SHANGHAI = "310000"
MORTGAGE = "个人住房抵押贷款"

SEED_STATEMENTS: list[tuple[str, str]] = [
    (
        "teams",
        f"INSERT INTO teams (name) SELECT '团队 ' || g FROM generate_series(1, {TEAMS}) g",
    ),
    (
        "officers",
        f"""
        INSERT INTO users (email, display_name, password_hash, role_id, team_id)
        SELECT 'officer' || g || '@bench.example', '客户经理 ' || g, 'not-a-password-hash',
               (SELECT id FROM roles WHERE name = 'loan_officer'),
               (SELECT id FROM teams ORDER BY name OFFSET g % {TEAMS} LIMIT 1)
        FROM generate_series(1, {OFFICERS}) g
        """,
    ),
    (
        "customers",
        """
        WITH officers AS (
            SELECT array_agg(id ORDER BY email) AS ids, array_agg(team_id ORDER BY email) AS teams
            FROM users WHERE email LIKE 'officer%@bench.example'
        ), drawn AS (
            SELECT g, random() AS r_kind, random() AS r_status, random() AS r_region, random() AS r_risk,
                   400 + floor(580 * (random() + random() + random()) / 3)::int AS score,
                   random() AS r_scored, random() AS r_income, random() AS r_tags, random() AS r_contact,
                   random() AS r_owner, random() AS r_created, random() AS r_source
            FROM generate_series(1, :customers) g
        )
        INSERT INTO customers (
            kind, name, region_code, monthly_income, risk_level, status, owner_id, team_id,
            credit_score, credit_grade, tags, source, last_contact_at, created_at, updated_at
        )
        SELECT
            CASE WHEN r_kind < 0.9 THEN 'individual' ELSE 'enterprise' END,
            '客户' || lpad(g::text, 7, '0'),
            (CAST(:regions AS text[]))[
                1 + floor(power(r_region, 2.2) * cardinality(CAST(:regions AS text[])))::int
            ],
            round((3000 + power(r_income, 3) * 97000)::numeric, 2),
            CASE WHEN r_risk < 0.70 THEN 'low' WHEN r_risk < 0.92 THEN 'medium' ELSE 'high' END,
            CASE WHEN r_status < 0.60 THEN 'active' WHEN r_status < 0.85 THEN 'prospect'
                 WHEN r_status < 0.95 THEN 'settled' ELSE 'closed' END,
            CASE WHEN r_owner < 0.98 THEN officers.ids[1 + g % cardinality(officers.ids)] END,
            CASE WHEN r_owner < 0.98 THEN officers.teams[1 + g % cardinality(officers.teams)] END,
            CASE WHEN r_scored < 0.9 THEN score END,
            CASE WHEN r_scored >= 0.9 THEN NULL
                 WHEN score >= 850 THEN 'AAA' WHEN score >= 800 THEN 'AA' WHEN score >= 750 THEN 'A'
                 WHEN score >= 700 THEN 'BBB' WHEN score >= 650 THEN 'BB' WHEN score >= 600 THEN 'B'
                 WHEN score >= 550 THEN 'CCC' WHEN score >= 500 THEN 'CC' WHEN score >= 450 THEN 'C'
                 ELSE 'D' END,
            CASE WHEN r_tags < 0.05 THEN ARRAY['VIP', '代发工资']
                 WHEN r_tags < 0.15 THEN ARRAY['代发工资']
                 WHEN r_tags < 0.22 THEN ARRAY['小微企业主']
                 WHEN r_tags < 0.25 THEN ARRAY['老客户', '重点客户']
                 ELSE ARRAY[]::text[] END,
            (ARRAY['walk_in', 'referral', 'online', 'partner', 'marketing', 'import'])[
                1 + floor(r_source * 6)::int
            ],
            CASE WHEN r_contact < 0.9 THEN now() - r_contact / 0.9 * interval '180 days' END,
            now() - r_created * interval '1826 days',
            now() - r_created * interval '30 days'
        FROM drawn, officers
        """,
    ),
    (
        "loans, instalments, repayments, flags and cases",
        # One statement: the tenant role may not create temporary tables, and the draws of each
        # loan (days overdue, amount, repaid share) feed every table below. Parent and child rows
        # in one statement are fine: foreign keys are checked at its end.
        f"""
        WITH drawn AS MATERIALIZED (
            SELECT gen_random_uuid() AS id, gen_random_uuid() AS repayment_id, c.id AS customer_id,
                   c.kind, c.owner_id,
                   CASE WHEN random() < CASE c.risk_level WHEN 'high' THEN 0.25 WHEN 'medium' THEN 0.08
                                                          ELSE 0.03 END
                        THEN 1 + floor(power(random(), 2) * 720)::int ELSE 0 END AS days_overdue,
                   random() AS r_product, random() AS r_amount, random() AS r_age,
                   (0.05 + 0.55 * random())::numeric AS repaid_share, random() AS r_other
            -- The coin is drawn per customer in a subquery: a filter on k alone would be
            -- evaluated once per k, not once per customer.
            FROM (SELECT *, random() AS r_second FROM customers WHERE status = 'active') c
            CROSS JOIN generate_series(1, 2) k
            WHERE k = 1 OR c.r_second < 0.5
        ), book AS MATERIALIZED (
            SELECT d.*, p.product, p.rate, p.term, p.method,
                   (round((p.low + power(d.r_amount, 2) * (p.high - p.low)) / 1000) * 1000)::numeric
                       AS amount,
                   current_date - (60 + d.days_overdue + floor(d.r_age * 900)::int) AS start_date
            FROM drawn d
            CROSS JOIN LATERAL (
                SELECT * FROM (VALUES
                  ('individual', 0.00, 0.35, '{MORTGAGE}', 500000, 5000000, 0.041, 240, 'equal_installment'),
                  ('individual', 0.35, 0.70, '个人消费贷款', 50000, 300000, 0.090, 36, 'equal_principal'),
                  ('individual', 0.70, 0.85, '个人经营贷款', 500000, 3000000, 0.060, 36, 'interest_only'),
                  ('individual', 0.85, 1.01, '汽车贷款', 100000, 400000, 0.070, 60, 'equal_installment'),
                  ('enterprise', 0.00, 0.60, '流动资金贷款', 1000000, 20000000, 0.055, 12, 'bullet'),
                  ('enterprise', 0.60, 1.01, '固定资产贷款', 2000000, 30000000, 0.050, 60, 'equal_principal')
                ) AS t(kind, from_r, to_r, product, low, high, rate, term, method)
                WHERE t.kind = d.kind AND d.r_product >= t.from_r AND d.r_product < t.to_r
            ) p
        ), new_loans AS (
            INSERT INTO loans (id, customer_id, product, amount, annual_rate, term_months, method,
                               start_date, first_due_date, status, classification, flags, created_by)
            SELECT id, customer_id, product, amount, rate, term, method, start_date, start_date + 30,
                   'active',
                   CASE WHEN days_overdue > 360 THEN 'loss' WHEN days_overdue > 270 THEN 'doubtful'
                        WHEN days_overdue > 90 THEN 'substandard' WHEN days_overdue > 0 THEN 'special_mention'
                        WHEN r_other < 0.01 THEN 'substandard' ELSE 'normal' END,
                   CASE WHEN days_overdue = 0 AND r_other < 0.01 THEN ARRAY['restructured']
                        ELSE ARRAY[]::text[] END,
                   owner_id
            FROM book
        ), new_installments AS (
            -- 1: everything repaid so far, collapsed into one instalment paid on its due date;
            -- 2: the overdue one, unpaid; 3: the next one, due within a month.
            INSERT INTO installments (loan_id, number, due_date, principal, interest,
                                      principal_paid, interest_paid, paid_on)
            SELECT id, 1, start_date + 30, round(amount * repaid_share, 2), round(amount * 0.004, 2),
                   round(amount * repaid_share, 2), round(amount * 0.004, 2), start_date + 30
            FROM book
            UNION ALL
            SELECT id, 2, current_date - days_overdue, round(amount * 0.01, 2), round(amount * 0.003, 2),
                   0, 0, NULL
            FROM book WHERE days_overdue > 0
            UNION ALL
            SELECT id, 3, current_date + 1 + floor(r_other * 29)::int, round(amount * 0.01, 2),
                   round(amount * 0.003, 2), 0, 0, NULL
            FROM book
        ), new_repayments AS (
            INSERT INTO repayments (id, loan_id, amount, paid_on, channel)
            SELECT repayment_id, id, round(amount * repaid_share, 2) + round(amount * 0.004, 2),
                   start_date + 30, 'bank_transfer'
            FROM book
        ), new_allocations AS (
            INSERT INTO repayment_allocations (repayment_id, number, loan_id, paid_on, interest, principal)
            SELECT repayment_id, 1, id, start_date + 30, round(amount * 0.004, 2),
                   round(amount * repaid_share, 2)
            FROM book
        ), new_warnings AS (
            INSERT INTO warnings (id, customer_id, kind, details)
            SELECT gen_random_uuid(), customer_id, 'days_past_due',
                   jsonb_build_object('days_past_due', max(days_overdue), 'threshold', 30)
            FROM book WHERE days_overdue > 30 GROUP BY customer_id
        )
        INSERT INTO risk_cases (id, customer_id, loan_id, trigger, description, status, owner_id, opened_by)
        SELECT gen_random_uuid(), customer_id, min(id::text)::uuid, 'overdue', '逾期催收', 'open',
               min(owner_id::text)::uuid, min(owner_id::text)::uuid
        FROM book WHERE days_overdue > 60 AND r_other < 0.35 GROUP BY customer_id
        """,
    ),
    (
        "settled loans",
        """
        INSERT INTO loans (id, customer_id, product, amount, annual_rate, term_months, method,
                           start_date, first_due_date, status, settled_on, classification)
        SELECT gen_random_uuid(), c.id,
               CASE WHEN c.kind = 'individual' THEN '个人消费贷款' ELSE '流动资金贷款' END,
               100000, 0.080000, 12, 'equal_installment',
               current_date - 500, current_date - 470, 'settled', current_date - 100, 'normal'
        FROM customers c WHERE c.status = 'settled'
        """,
    ),
]


@dataclass(frozen=True)
class Shape:
    """A segment measured by the bench: its filter and the same question written by hand."""

    key: str
    title: str
    filter: dict[str, Any]
    reference_where: str  # over customers c; :officer is the acting officer for scope own


# The references are the same questions written by hand over the same tables the service may read,
# the stored loan figures included (customer_loan_summary, ADR 0010: a row per customer with a live
# loan, right for as_of today), each planned for its values like the service's. They follow
# segments.filter's definitions: days past due > 0 is an unpaid instalment due before the day; a
# customer never contacted counts as not contacted for any number of days; contact days are UTC days.
SHAPES = [
    Shape(
        "shape1",
        "high risk in Shanghai with an overdue loan, not contacted for 30 days",
        {
            "and": [
                {"field": "riskLevel", "op": "eq", "value": "high"},
                {"field": "regionCode", "op": "eq", "value": SHANGHAI},
                {"field": "daysPastDue", "op": "gt", "value": 0},
                {"field": "daysSinceLastContact", "op": "gte", "value": 30},
            ]
        },
        f"""c.risk_level = 'high' AND c.region_code = '{SHANGHAI}'
        AND EXISTS (SELECT 1 FROM customer_loan_summary s
                    WHERE s.customer_id = c.id AND s.oldest_unpaid_due < :as_of)
        AND (c.last_contact_at IS NULL
             OR c.last_contact_at < (CAST(:as_of AS date) - 29)::timestamp AT TIME ZONE 'UTC')""",
    ),
    Shape(
        "shape2",
        "(grade in BB, B, CCC or score < 600) and outstanding 1e6-5e6 and no open risk case",
        {
            "and": [
                {
                    "or": [
                        {"field": "creditGrade", "op": "in", "value": ["BB", "B", "CCC"]},
                        {"field": "creditScore", "op": "lt", "value": 600},
                    ]
                },
                {"field": "outstandingBalance", "op": "between", "value": [1_000_000, 5_000_000]},
                {"not": {"field": "hasOpenRiskCase", "op": "eq", "value": True}},
            ]
        },
        """(c.credit_grade IN ('BB', 'B', 'CCC') OR c.credit_score < 600)
        AND EXISTS (SELECT 1 FROM customer_loan_summary s
                    WHERE s.customer_id = c.id AND s.outstanding BETWEEN 1000000 AND 5000000)
        AND NOT EXISTS (SELECT 1 FROM risk_cases r WHERE r.customer_id = c.id
                        AND r.status IN ('open', 'in_progress'))""",
    ),
    Shape(
        "shape3",
        f"product {MORTGAGE} and class substandard, doubtful or loss and tagged VIP",
        {
            "and": [
                {"field": "product", "op": "eq", "value": MORTGAGE},
                {"field": "classification", "op": "in", "value": ["substandard", "doubtful", "loss"]},
                {"field": "tags", "op": "contains", "value": "VIP"},
            ]
        },
        f"""c.tags @> ARRAY['VIP']
        AND EXISTS (SELECT 1 FROM loans l WHERE l.customer_id = c.id AND l.product = '{MORTGAGE}')
        AND EXISTS (SELECT 1 FROM customer_loan_summary s WHERE s.customer_id = c.id
                    AND s.classes && ARRAY['substandard', 'doubtful', 'loss'])""",
    ),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def seed(db: Database, tenant: Tenant, customers: int) -> dict[str, float]:
    """Fill the tenant; seconds per step. One transaction, so the temporary table lives throughout."""
    seconds: dict[str, float] = {}
    async with tenant_session(db, tenant) as session:
        for name, statement in SEED_STATEMENTS:
            start = perf_counter()
            await session.execute(text(statement), {"customers": customers, "regions": list(REGION_CODES)})
            seconds[name] = seconds.get(name, 0.0) + perf_counter() - start
            log(f"seeded {name} in {perf_counter() - start:.1f} s")
    return seconds


SEEDED_TABLES = ("customers", "loans", "installments", "repayment_allocations", "warnings", "risk_cases")


async def vacuum_analyze(db: Database, tenant: Tenant, tables: tuple[str, ...] = SEEDED_TABLES) -> float:
    """Fresh statistics and visibility map, as autovacuum would leave them after a bulk load."""
    start = perf_counter()
    async with db.admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await conn.execute(text(f'VACUUM ANALYZE "{tenant.schema}".{table}'))
    return perf_counter() - start


async def table_sizes(db: Database, tenant: Tenant) -> dict[str, int]:
    async with tenant_session(db, tenant) as session:
        rows = await session.execute(
            text(
                "SELECT 'customers', count(*) FROM customers"
                " UNION ALL SELECT 'active customers', count(*) FROM customers WHERE status = 'active'"
                " UNION ALL SELECT 'high risk', count(*) FROM customers WHERE risk_level = 'high'"
                " UNION ALL SELECT 'in Shanghai', count(*) FROM customers WHERE region_code = '310000'"
                " UNION ALL SELECT 'loans', count(*) FROM loans"
                " UNION ALL SELECT 'live loans', count(*) FROM loans WHERE status = 'active'"
                " UNION ALL SELECT 'installments', count(*) FROM installments"
                " UNION ALL SELECT 'overdue loans', count(DISTINCT loan_id) FROM installments"
                "   WHERE paid_on IS NULL AND due_date < current_date"
                " UNION ALL SELECT 'warnings', count(*) FROM warnings"
                " UNION ALL SELECT 'open risk cases', count(*) FROM risk_cases"
                " UNION ALL SELECT 'loan summaries', count(*) FROM customer_loan_summary"
            )
        )
        return {name: int(count) for name, count in rows}


Work = Callable[[], Awaitable[int]]


async def timed(work: Work) -> tuple[float, int]:
    start = perf_counter()
    count = await work()
    return perf_counter() - start, count


def service_work(db: Database, tenant: Tenant, principal: Any, shape: Shape, as_of: date) -> Work:
    from tenantcrm.segments.service import SegmentService

    async def work() -> int:
        async with tenant_session(db, tenant) as session:
            service = SegmentService(session, principal)
            count = await service.count(shape.filter, as_of=as_of)
            page = await service.customers(shape.filter, first=PAGE, as_of=as_of)
            assert len(page.customers) == min(PAGE, count), (len(page.customers), count)
            return count

    return work


def reference_work(db: Database, tenant: Tenant, shape: Shape, officer: str | None, as_of: date) -> Work:
    scope = "" if officer is None else " AND c.owner_id = CAST(:officer AS uuid)"
    where = f"({shape.reference_where}){scope}"
    count = text(f"SELECT count(*) FROM customers c WHERE {where}")
    page = text(
        f"SELECT c.* FROM customers c WHERE {where} ORDER BY c.created_at DESC, c.id DESC LIMIT {PAGE + 1}"
    )
    params: dict[str, Any] = {"as_of": as_of} if officer is None else {"as_of": as_of, "officer": officer}

    async def work() -> int:
        async with tenant_session(db, tenant) as session:
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            total = int(await session.scalar(count, params) or 0)
            rows = (await session.execute(page, params)).all()
            assert len(rows) == min(PAGE + 1, total)
            return total

    return work


async def explain(
    db: Database, tenant: Tenant, principal: Any, shape: Shape, as_whom: str, as_of: date
) -> None:
    """Print the plans of the statements the service runs for this shape (EXPLAIN ANALYZE)."""
    from tenantcrm.segments.service import SegmentService

    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if "customers" in statement and "set_config" not in statement:
            captured.append((statement, parameters))

    engine = db.app_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with tenant_session(db, tenant) as session:
            service = SegmentService(session, principal)
            await service.count(shape.filter, as_of=as_of)
            await service.customers(shape.filter, first=PAGE, as_of=as_of)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    async with tenant_session(db, tenant) as session:
        conn = await session.connection()
        for statement, parameters in captured:
            plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            log(f"--- {shape.key} as {as_whom}:\n{statement}\n" + "\n".join(row[0] for row in plan))


async def measure(
    runs: int, warmup: int, service: Work, reference: Work
) -> tuple[list[float], list[float], int]:
    """Interleaved runs (service, reference, reference, service, ...) so drift hits both alike."""
    for _ in range(warmup):
        await service()
        await reference()
    service_seconds: list[float] = []
    reference_seconds: list[float] = []
    for run in range(runs):
        order = (service, reference) if run % 2 == 0 else (reference, service)
        counts = []
        for work in order:
            seconds, count = await timed(work)
            (service_seconds if work is service else reference_seconds).append(seconds)
            counts.append(count)
        if counts[0] != counts[1]:
            raise SystemExit(f"service and reference disagree: {counts}")
    return service_seconds, reference_seconds, counts[0]


async def prepare(args: argparse.Namespace, scratch: Scratch, comment: str | None) -> tuple[Tenant, str]:
    """The seeded tenant and how it was seeded: built now, or found in a kept database (brought
    to the head revision, so a new migration's indexes apply to it)."""
    n, db = args.customers, scratch.db
    lifecycle = TenantLifecycle(db, scratch.settings)
    marker = f"bench/segments.py {n} customers"
    if comment is not None:
        if not comment.startswith(marker + ";"):
            raise SystemExit(
                f"the kept database {args.keep_database} holds no complete seed of {n} customers "
                f"({comment or 'no seed recorded'}); drop it with --drop-database {args.keep_database}"
            )
        tenant = await lifecycle.get(SLUG)
        (outcome,) = await lifecycle.migrate(SLUG)
        if outcome.status == "failed":
            raise SystemExit(f"migrating the kept tenant failed: {outcome.error}")
        log(f"reusing {args.keep_database} ({comment}); tenant {outcome.status} at {outcome.to_version}")
        return tenant, f"kept database, {comment.removeprefix(marker + ';').strip()}"
    await lifecycle.create(SLUG, name="Bench segments", admin_email=ADMIN_EMAIL)
    tenant = await lifecycle.get(SLUG)
    log(f"seeding {n} customers in {scratch.settings.database_url}")
    start = perf_counter()
    await seed(db, tenant, n)
    vacuum = await vacuum_analyze(db, tenant)
    # The seed writes loans without LoanService: the daily rebuild fills the stored figures
    # (ADR 0010) on analysed tables, as it would run, and its time is what that job costs.
    rebuild_start = perf_counter()
    stale = await rebuild_summaries(db, tenant)
    rebuild_seconds = perf_counter() - rebuild_start
    log(f"rebuilt the stored loan figures in {rebuild_seconds:.1f} s ({stale} rows)")
    vacuum += await vacuum_analyze(db, tenant, ("customer_loan_summary",))
    seed_seconds = perf_counter() - start
    log(f"seeded in {seed_seconds:.0f} s (VACUUM ANALYZE {vacuum:.0f} s)")
    how = (
        f"seeded in {seed_seconds:.0f} s (of which {rebuild_seconds:.0f} s rebuilding the stored loan "
        f"figures, ADR 0010)"
    )
    if args.keep_database:
        await mark_kept(scratch, f"{marker}; {how}")
    return tenant, how


async def main(args: argparse.Namespace) -> list[Result]:
    n = args.customers
    if args.drop_database:
        await drop_kept_database(args.drop_database)
        log(f"dropped {args.drop_database}")
        return []
    results: list[Result] = []
    async with kept_or_scratch_database(args.keep_database) as (scratch, comment):
        db = scratch.db
        tenant, seeded = await prepare(args, scratch, comment)
        sizes = await table_sizes(db, tenant)
        log(f"tenant: {sizes}")
        if args.seed_only:
            return []

        async with tenant_session(db, tenant) as session:
            admin_id = await session.scalar(
                text("SELECT id FROM users WHERE email = :email"), {"email": ADMIN_EMAIL}
            )
            officer_id = await session.scalar(
                text("SELECT id FROM users WHERE email = 'officer1@bench.example'")
            )
            admin = await principal_for_user(session, tenant, admin_id)
            officer = await principal_for_user(session, tenant, officer_id)
        viewers = [("admin", admin, None), ("officer", officer, str(officer_id))]
        as_of = datetime.now(UTC).date()

        for shape in SHAPES:
            for as_whom, principal, scope_officer in viewers:
                if args.explain:
                    await explain(db, tenant, principal, shape, as_whom, as_of)
                service_seconds, reference_seconds, count = await measure(
                    args.runs,
                    args.warmup,
                    service_work(db, tenant, principal, shape, as_of),
                    reference_work(db, tenant, shape, scope_officer, as_of),
                )
                suffix = "" if as_whom == "admin" else ".own"
                reference = latency_result(
                    f"segments.{shape.key}{suffix}.reference@{n}",
                    reference_seconds,
                    len(reference_seconds) / sum(reference_seconds),
                    notes=f"hand-written SQL of {shape.title}, as {as_whom}: count + first {PAGE} rows in "
                    f"one tenant transaction; {count} customers match; throughput in segments/s",
                )
                measured = latency_result(
                    f"segments.{shape.key}{suffix}@{n}",
                    service_seconds,
                    len(service_seconds) / sum(service_seconds),
                    reference=reference.p50_ms,
                    target=f"ratio <= {TARGET_RATIO} and p50 < {TARGET_P50_MS} ms (issue 8)",
                    notes=f"SegmentService.count + customers(first={PAGE}) of {shape.title}, as {as_whom} "
                    f"(record scope {principal.record_scope}), one tenant transaction per run; {count} "
                    f"customers match; {args.runs} runs after {args.warmup} warm-up, interleaved with "
                    f"the reference; reference = its p50 (ms), ratio = p50 / reference p50; throughput "
                    f"in segments/s; tenant of {sizes}, {seeded}",
                )
                measured.ratio = round(measured.p50_ms / reference.p50_ms, 3)
                measured.met = measured.ratio <= TARGET_RATIO and measured.p50_ms < TARGET_P50_MS
                log(
                    f"{measured.name}: p50 {measured.p50_ms} ms, reference {reference.p50_ms} ms, "
                    f"ratio {measured.ratio}, {count} match"
                )
                results += [measured, reference]
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers (default 1,000,000)")
    parser.add_argument(
        "--runs", type=int, default=10, help="measured runs per shape and viewer (default 10)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first (default 3)")
    parser.add_argument("--explain", action="store_true", help="print the service's plans to stderr")
    parser.add_argument("--seed-only", action="store_true", help="seed, print the sizes, measure nothing")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    add_kept_database_arguments(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    if measured:
        write_results(measured, arguments.results)
        print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
