"""The lending book over GraphQL: customers' profiles, collateral, loans, repayments, arrears and
classification, against real PostgreSQL.

Every tenant here is this module's own. Refused writes are checked against a count of every
lending table (and the audit log) before and after: nothing may be left behind.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import event, text

from tenantcrm.collateral.inputs import KINDS, TITLE_STATUSES
from tenantcrm.collateral.service import CollateralService
from tenantcrm.customers.inputs import CREDIT_GRADES, GENDERS, MARITAL_STATUSES, SOURCES
from tenantcrm.customers.service import CustomerService
from tenantcrm.graphql import collateral as collateral_api
from tenantcrm.graphql import customers as customers_api
from tenantcrm.graphql import loans as loans_api
from tenantcrm.graphql.compiled import CompiledReads
from tenantcrm.graphql.loaders import Loaders
from tenantcrm.loans.inputs import CHANNELS, FLAGS
from tenantcrm.loans.ledger import BUCKETS, CLASSES, DEFAULT_RULES
from tenantcrm.loans.schedule import METHODS, build_schedule
from tenantcrm.loans.service import STATUSES, LoanService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, api_token_for, make_tenant, principal_of

# --- helpers ---


async def post(client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def ok(client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> dict:
    body = await post(client, token, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def two_decimals(value: str) -> bool:
    whole, _, cents = value.partition(".")
    return whole.lstrip("-").isdigit() and len(cents) == 2 and cents.isdigit()


LENDING_TABLES = (
    "customers",
    "collateral",
    "collateral_appraisals",
    "loans",
    "loan_collateral",
    "installments",
    "repayments",
    "repayment_allocations",
    "loan_classifications",
    "classification_rules",
    "audit_events",
)


async def snapshot(db, tenant) -> dict[str, object]:
    """Row counts of every lending table, and what a refused write could have changed in place."""
    async with tenant_session(db, tenant) as session:
        counts: dict[str, object] = {
            table: await session.scalar(text(f"SELECT count(*) FROM {table}")) for table in LENDING_TABLES
        }
        counts["loans_state"] = (
            await session.execute(
                text("SELECT id, status, classification, flags, updated_at FROM loans ORDER BY id")
            )
        ).all()
        counts["collateral_state"] = (
            await session.execute(
                text("SELECT id, kind, appraised_value, updated_at FROM collateral ORDER BY id")
            )
        ).all()
        counts["repayments_state"] = (
            await session.execute(text("SELECT id, reversed_at FROM repayments ORDER BY id"))
        ).all()
        counts["installments_state"] = (
            await session.execute(
                text("SELECT loan_id, number, principal_paid, interest_paid FROM installments ORDER BY 1, 2")
            )
        ).all()
        counts["customers_state"] = (
            await session.execute(text("SELECT id, status, updated_at FROM customers ORDER BY id"))
        ).all()
    return counts


@contextlib.contextmanager
def counting_statements(db) -> Iterator[list[str]]:
    """Every SQL statement the application role's engine sends while the block runs."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    engine = db.app_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- a tenant with a small book ---

START = date(2025, 1, 15)
LOAN_TERMS = {
    "product": "房抵经营贷",
    "amount": "120000.00",
    "annual_rate": "0.06",
    "term_months": 12,
    "method": "equal_principal",
    "start_date": START,
}
APPRAISAL = {"kind": "residence", "location": "广州市天河区", "area_m2": "89.5", "appraised_value": "2000000"}


@dataclass
class Book:
    tenant: object
    tokens: dict[str, str]  # admin, officer, other_officer, viewer, risk
    customer_id: str  # owned by the officer; a collateral and a loan
    collateral_id: str
    loan_id: str  # 120,000 over 12 months from START, secured by the collateral
    repaid_loan_id: str  # the same terms, 10,600.00 repaid on 2025-03-01
    repayment_id: str


async def _customer(db, tenant, principal, **fields) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        row = await CustomerService(session, principal).create_customer({"kind": "individual", **fields})
        return row.id


async def _collateral(db, tenant, principal, customer_id, **fields) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        row = await CollateralService(session, principal).create(customer_id, {**APPRAISAL, **fields})
        return row.id


async def _loan(db, tenant, principal, customer_id, **fields) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        row = await LoanService(session, principal).create_loan(customer_id, {**LOAN_TERMS, **fields})
        return row.id


async def _repay(db, tenant, principal, loan_id, amount: str, paid_on: date) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        row = await LoanService(session, principal).record_repayment(
            loan_id, {"amount": amount, "paid_on": paid_on, "channel": "wechat", "reference": "T-1"}
        )
        return row.id


@pytest.fixture(scope="module")
async def book(db, lifecycle) -> Book:
    fixture = await make_tenant(lifecycle, "lending")
    tenant = fixture.tenant
    emails = {"admin": fixture.admin_email}
    for key, role in (
        ("officer", "loan_officer"),
        ("other_officer", "loan_officer"),
        ("viewer", "viewer"),
        ("risk", "risk_officer"),
    ):
        emails[key] = await add_user(db, tenant, role)
    officer = await principal_of(db, tenant, emails["officer"])
    customer_id = await _customer(db, tenant, officer, name="王小明", monthly_income="20000")
    collateral_id = await _collateral(db, tenant, officer, customer_id)
    loan_id = await _loan(db, tenant, officer, customer_id, collateral_ids=[collateral_id])
    repaid_loan_id = await _loan(db, tenant, officer, customer_id)
    repayment_id = await _repay(db, tenant, officer, repaid_loan_id, "10600.00", date(2025, 3, 1))
    return Book(
        tenant=tenant,
        tokens={key: await api_token_for(db, tenant, email) for key, email in emails.items()},
        customer_id=str(customer_id),
        collateral_id=str(collateral_id),
        loan_id=str(loan_id),
        repaid_loan_id=str(repaid_loan_id),
        repayment_id=str(repayment_id),
    )


def test_the_enums_speak_the_services_vocabularies():
    def values(enum_type) -> set[str]:
        return {member.value for member in enum_type}

    assert values(customers_api.Gender) == set(GENDERS)
    assert values(customers_api.MaritalStatus) == set(MARITAL_STATUSES)
    assert values(customers_api.CreditGrade) == set(CREDIT_GRADES)
    assert values(customers_api.CustomerSource) == set(SOURCES)
    assert values(collateral_api.CollateralKind) == set(KINDS)
    assert values(collateral_api.TitleStatus) == set(TITLE_STATUSES)
    assert values(loans_api.RepaymentMethod) == set(METHODS)
    assert values(loans_api.LoanStatus) == set(STATUSES)
    assert values(loans_api.LoanClassification) == set(CLASSES)
    assert values(loans_api.ArrearsBucket) == set(BUCKETS)
    assert values(loans_api.LoanFlag) == set(FLAGS)
    assert values(loans_api.RepaymentChannel) == set(CHANNELS)


# --- reading: the nested book ---

CUSTOMER_BOOK = """
query Book($id: ID!) {
  customer(id: $id) {
    id name monthlyIncome status
    collateral {
      id customerId kind location areaM2 appraisedValue appraisedOn titleStatus lienOrder
      appraisals { value appraisedOn appraiser }
      loans { id loanToValue }
    }
    loans {
      id customerId product amount annualRate termMonths method startDate firstDueDate status
      classification flags settledOn loanToValue
      collateral { id }
      schedule { number dueDate principal interest payment principalPaid interestPaid paidOn }
      repayments { id amount paidOn channel reference recordedAt reversed reversedAt reversalReason }
    }
  }
}
"""


async def test_a_customer_reads_with_its_collateral_loans_schedules_and_repayments(client, book):
    customer = (await ok(client, book.tokens["officer"], CUSTOMER_BOOK, {"id": book.customer_id}))["customer"]
    assert customer["status"] == "ACTIVE"  # a prospect becomes active with its first loan
    (collateral,) = customer["collateral"]
    assert collateral["id"] == book.collateral_id
    assert collateral["customerId"] == book.customer_id
    assert (collateral["kind"], collateral["titleStatus"], collateral["lienOrder"]) == (
        "RESIDENCE",
        "CLEAR",
        1,
    )
    assert (collateral["areaM2"], collateral["appraisedValue"]) == ("89.50", "2000000.00")
    assert [a["value"] for a in collateral["appraisals"]] == ["2000000.00"]
    assert [loan["id"] for loan in collateral["loans"]] == [book.loan_id]

    secured, repaid = customer["loans"]
    assert [secured["id"], repaid["id"]] == [book.loan_id, book.repaid_loan_id]
    assert secured["customerId"] == book.customer_id
    assert (secured["amount"], secured["annualRate"], secured["termMonths"]) == ("120000.00", "0.060000", 12)
    assert (secured["method"], secured["status"], secured["classification"]) == (
        "EQUAL_PRINCIPAL",
        "ACTIVE",
        "NORMAL",
    )
    assert (secured["startDate"], secured["firstDueDate"], secured["flags"]) == (
        "2025-01-15",
        "2025-02-15",
        [],
    )
    assert [c["id"] for c in secured["collateral"]] == [book.collateral_id]
    assert repaid["collateral"] == [] and repaid["loanToValue"] is None

    # The stored schedule is the contract's, to the cent.
    contract = build_schedule(Decimal("120000.00"), Decimal("0.06"), 12, "equal_principal", START)
    assert [
        (row["number"], row["dueDate"], row["principal"], row["interest"]) for row in secured["schedule"]
    ] == [
        (i.number, i.due_date.isoformat(), str(i.principal), str(i.interest)) for i in contract.installments
    ]
    assert secured["repayments"] == []
    assert secured["loanToValue"] == str(
        (Decimal("120000.00") / Decimal("2000000.00")).quantize(Decimal("0.0001"))
    )

    first = repaid["schedule"][0]
    assert (first["principalPaid"], first["interestPaid"], first["paidOn"]) == (
        "10000.00",
        "600.00",
        "2025-03-01",
    )
    assert repaid["schedule"][1]["principalPaid"] == "0.00" and repaid["schedule"][1]["paidOn"] is None
    (repayment,) = repaid["repayments"]
    assert repayment["id"] == book.repayment_id
    assert (repayment["amount"], repayment["paidOn"], repayment["channel"], repayment["reference"]) == (
        "10600.00",
        "2025-03-01",
        "WECHAT",
        "T-1",
    )
    assert (repayment["reversed"], repayment["reversedAt"], repayment["reversalReason"]) == (
        False,
        None,
        None,
    )

    for loan in customer["loans"]:
        for row in loan["schedule"]:
            assert all(
                two_decimals(row[f])
                for f in ("principal", "interest", "payment", "principalPaid", "interestPaid")
            )


ARREARS = """
query Arrears($id: ID!, $asOf: Date) {
  loan(id: $id) {
    arrears(asOf: $asOf) {
      asOf daysPastDue overdueAmount overduePrincipal overdueInterest outstandingPrincipal bucket
      nextDue { number dueDate payment outstanding }
    }
  }
}
"""


async def arrears(client, token, loan_id: str, as_of: str | None) -> dict:
    return (await ok(client, token, ARREARS, {"id": loan_id, "asOf": as_of}))["loan"]["arrears"]


async def test_arrears_as_of_a_date(client, book):
    token = book.tokens["viewer"]
    on_the_due_date = await arrears(client, token, book.loan_id, "2025-02-15")
    assert on_the_due_date == {
        "asOf": "2025-02-15",
        "daysPastDue": 0,
        "overdueAmount": "0.00",
        "overduePrincipal": "0.00",
        "overdueInterest": "0.00",
        "outstandingPrincipal": "120000.00",
        "bucket": "CURRENT",
        "nextDue": {"number": 1, "dueDate": "2025-02-15", "payment": "10600.00", "outstanding": "10600.00"},
    }
    day_after = await arrears(client, token, book.loan_id, "2025-02-16")
    assert (day_after["daysPastDue"], day_after["bucket"], day_after["overdueAmount"]) == (
        1,
        "DAYS_1_30",
        "10600.00",
    )
    assert (day_after["overduePrincipal"], day_after["overdueInterest"]) == ("10000.00", "600.00")
    forty_days = await arrears(client, token, book.loan_id, "2025-03-27")
    assert (forty_days["daysPastDue"], forty_days["bucket"]) == (40, "DAYS_31_60")
    assert forty_days["overdueAmount"] == "21150.00"  # 10,600.00 + 10,000.00 + 550.00 interest

    # The repaid loan: overdue until the repayment of 2025-03-01, current after it.
    before = await arrears(client, token, book.repaid_loan_id, "2025-02-20")
    assert (before["daysPastDue"], before["overdueAmount"]) == (5, "10600.00")
    after = await arrears(client, token, book.repaid_loan_id, "2025-03-02")
    assert (after["daysPastDue"], after["bucket"], after["overdueAmount"]) == (0, "CURRENT", "0.00")
    assert after["outstandingPrincipal"] == "110000.00"
    assert after["nextDue"]["number"] == 2

    # Without asOf: today, whose date the answer says.
    today = await arrears(client, token, book.loan_id, None)
    assert today["asOf"] == date.today().isoformat()


async def test_loan_fields_of_one_loan(client, book):
    query = """
    query ($id: ID!) {
      loan(id: $id) {
        id nextInstallment { number } payoffAmount(on: "2025-02-10")
        classificationSuggestion(asOf: "2025-06-01") {
          asOf classification daysPastDue matchedRules { classification minDaysPastDue flag }
        }
        classificationHistory { classification }
      }
    }
    """
    loan = (await ok(client, book.tokens["risk"], query, {"id": book.loan_id}))["loan"]
    assert loan["payoffAmount"] == "120600.00"  # all principal and the period's interest
    suggestion = loan["classificationSuggestion"]
    # Due since 2025-02-15: 106 days on 2025-06-01, which the default rules make substandard.
    assert (suggestion["asOf"], suggestion["classification"], suggestion["daysPastDue"]) == (
        "2025-06-01",
        "SUBSTANDARD",
        106,
    )
    assert suggestion["matchedRules"] == [
        {"classification": "SPECIAL_MENTION", "minDaysPastDue": 1, "flag": None},
        {"classification": "SUBSTANDARD", "minDaysPastDue": 91, "flag": None},
    ]
    assert loan["classificationHistory"] == []
    # Every instalment fell due before today and none was paid: nothing is next.
    assert loan["nextInstallment"] is None


async def test_classification_rules_query(client, book):
    rules = (
        await ok(
            client, book.tokens["viewer"], "{ classificationRules { classification minDaysPastDue flag } }"
        )
    )["classificationRules"]
    assert len(rules) == len(DEFAULT_RULES)
    assert {"classification": "LOSS", "minDaysPastDue": 361, "flag": None} in rules
    assert {"classification": "DOUBTFUL", "minDaysPastDue": None, "flag": "BANKRUPTCY"} in rules


# --- the portfolio ---

PORTFOLIO = """
query Portfolio($first: Int, $after: String, $filter: LoanFilterInput, $asOf: Date) {
  loans(first: $first, after: $after, filter: $filter, asOf: $asOf) {
    asOf totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges {
      cursor customerName outstandingPrincipal daysPastDue overdueAmount nextDueDate bucket
      node { id customerId amount }
    }
  }
}
"""


async def portfolio(client, token, **variables) -> dict:
    return (await ok(client, token, PORTFOLIO, variables))["loans"]


async def test_the_portfolio_pages_filters_and_computes_arrears_as_of(client, book):
    token = book.tokens["officer"]
    mine = {"customerId": book.customer_id}
    whole = await portfolio(client, token, filter=mine, asOf="2025-03-02")
    assert whole["asOf"] == "2025-03-02"
    assert whole["totalCount"] == 2
    by_id = {edge["node"]["id"]: edge for edge in whole["edges"]}
    assert set(by_id) == {book.loan_id, book.repaid_loan_id}
    secured, repaid = by_id[book.loan_id], by_id[book.repaid_loan_id]
    assert (secured["customerName"], secured["daysPastDue"], secured["bucket"]) == ("王小明", 15, "DAYS_1_30")
    assert (secured["overdueAmount"], secured["outstandingPrincipal"]) == ("10600.00", "120000.00")
    assert (repaid["daysPastDue"], repaid["bucket"], repaid["overdueAmount"]) == (0, "CURRENT", "0.00")
    assert (repaid["outstandingPrincipal"], repaid["nextDueDate"]) == ("110000.00", "2025-03-15")

    first = await portfolio(client, token, first=1, filter=mine, asOf="2025-03-02")
    assert first["pageInfo"]["hasNextPage"] is True and first["totalCount"] == 2
    assert first["pageInfo"]["startCursor"] == first["pageInfo"]["endCursor"] == first["edges"][0]["cursor"]
    second = await portfolio(
        client, token, first=1, after=first["pageInfo"]["endCursor"], filter=mine, asOf="2025-03-02"
    )
    assert second["pageInfo"]["hasNextPage"] is False
    assert {first["edges"][0]["node"]["id"], second["edges"][0]["node"]["id"]} == set(by_id)

    current = await portfolio(client, token, filter={**mine, "bucket": "CURRENT"}, asOf="2025-03-02")
    assert [edge["node"]["id"] for edge in current["edges"]] == [book.repaid_loan_id]
    assert current["totalCount"] == 1
    late = await portfolio(client, token, filter={**mine, "bucket": "DAYS_1_30"}, asOf="2025-03-02")
    assert [edge["node"]["id"] for edge in late["edges"]] == [book.loan_id]
    assert (await portfolio(client, token, filter={**mine, "status": "SETTLED"}))["totalCount"] == 0
    assert (await portfolio(client, token, filter={**mine, "classification": "NORMAL"}))["totalCount"] >= 1


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 0}, "first must be between 1 and 100"),
        ({"first": 101}, "first must be between 1 and 100"),
        ({"after": "not-a-cursor"}, "after is not a cursor of this list"),
        ({"filter": {"customerId": "nope"}}, "filter.customerId is not a customer id"),
    ],
)
async def test_the_portfolio_refuses_bad_arguments_readably(client, book, variables, message):
    body = await post(client, book.tokens["admin"], PORTFOLIO, variables)
    assert [error["message"] for error in body["errors"]] == [message]


# --- statements: a constant number whatever the page size ---

NESTED = """
query Nested($first: Int!) {
  customers(first: $first) {
    edges { node {
      id
      collateral { id loans { id loanToValue } }
      loans {
        id loanToValue
        collateral { id }
        schedule { number dueDate principal interest payment principalPaid interestPaid paidOn }
        repayments { id amount paidOn reversed }
      }
    } }
  }
}
"""


@dataclass
class Volume:
    tenant: object
    token: str
    admin_email: str


@pytest.fixture(scope="module")
async def volume(db, lifecycle) -> Volume:
    """50 customers, each with a collateral and two loans (one secured), one of them repaid once."""
    fixture = await make_tenant(lifecycle, "volume")
    tenant = fixture.tenant
    admin = await principal_of(db, tenant, fixture.admin_email)
    for number in range(50):
        async with tenant_session(db, tenant) as session:
            customer = await CustomerService(session, admin).create_customer(
                {"kind": "individual", "name": f"客户 {number:02d}"}
            )
            collateral = await CollateralService(session, admin).create(customer.id, APPRAISAL)
            loans = LoanService(session, admin)
            secured = await loans.create_loan(customer.id, {**LOAN_TERMS, "collateral_ids": [collateral.id]})
            await loans.create_loan(customer.id, {**LOAN_TERMS, "term_months": 6})
            await loans.record_repayment(secured.id, {"amount": "10600.00", "paid_on": date(2025, 2, 15)})
            await loans.classify(secured.id, "special_mention", "逾期观察")
    return Volume(tenant, await api_token_for(db, tenant, fixture.admin_email), fixture.admin_email)


async def _statements_for(client, db, token: str, query: str, first: int) -> tuple[int, dict]:
    with counting_statements(db) as statements:
        data = await ok(client, token, query, {"first": first})
    return len(statements), data


async def test_nested_reads_take_the_same_statements_for_5_or_50_customers(client, db, volume):
    await ok(client, volume.token, NESTED, {"first": 1})  # the token's first use is recorded: not counted
    few, small = await _statements_for(client, db, volume.token, NESTED, 5)
    many, large = await _statements_for(client, db, volume.token, NESTED, 50)
    nodes = [edge["node"] for edge in large["customers"]["edges"]]
    assert len(small["customers"]["edges"]) == 5 and len(nodes) == 50
    assert sum(len(node["loans"]) for node in nodes) == 100
    assert sum(len(loan["schedule"]) for node in nodes for loan in node["loans"]) == 50 * (12 + 6)
    assert sum(len(loan["repayments"]) for node in nodes for loan in node["loans"]) == 50
    assert all(len(node["collateral"][0]["loans"]) == 1 for node in nodes)
    assert few == many, f"{few} statements for 5 customers, {many} for 50"
    # Scope and principal, the page, then one per nested list and one pair for loan-to-value.
    assert many <= 20, many


# Every per-loan figure, two of them as of two dates at once (aliases), and the appraisal history.
NESTED_FIGURES = """
query NestedFigures($first: Int!) {
  customers(first: $first) {
    edges { node {
      id
      collateral { id appraisals { value appraisedOn } loans { id loanToValue } }
      loans {
        id loanToValue
        arrears(asOf: "2025-03-20") { daysPastDue bucket overdueAmount nextDue { number } }
        later: arrears(asOf: "2025-06-20") { daysPastDue bucket }
        nextInstallment { number }
        payoffAmount(on: "2025-03-20")
        laterPayoff: payoffAmount(on: "2025-06-20")
        classificationSuggestion(asOf: "2025-03-20") {
          classification daysPastDue matchedRules { minDaysPastDue }
        }
        classificationHistory { classification previous reason }
      }
    } }
  }
}
"""


async def test_per_loan_figures_take_the_same_statements_for_5_or_50_customers(client, db, volume):
    await ok(client, volume.token, NESTED_FIGURES, {"first": 1})
    few, _ = await _statements_for(client, db, volume.token, NESTED_FIGURES, 5)
    many, large = await _statements_for(client, db, volume.token, NESTED_FIGURES, 50)
    assert few == many, f"{few} statements for 5 customers, {many} for 50"
    # Each batch is a fixed handful: ledgers are two statements per field and date, rules one more.
    assert many <= 30, many

    # Batched, every loan still gets its own figures, not a neighbour's.
    nodes = [edge["node"] for edge in large["customers"]["edges"]]
    assert len(nodes) == 50

    def secured_first(loans: list[dict]) -> list[dict]:
        # Both loans of a customer start on one day in one transaction: their order is the ids'.
        return sorted(loans, key=lambda loan: loan["loanToValue"] is None)

    async with tenant_session(db, volume.tenant) as session:
        admin = await principal_of(db, volume.tenant, volume.admin_email)
        service = LoanService(session, admin)
        one = await service.get_loan(secured_first(nodes[7]["loans"])[0]["id"])
        expected_payoff = await service.payoff_amount(one, date(2025, 3, 20))
    for node in nodes:
        secured, unsecured = secured_first(node["loans"])
        assert (secured["arrears"]["daysPastDue"], secured["arrears"]["bucket"]) == (5, "DAYS_1_30")
        assert (unsecured["arrears"]["daysPastDue"], unsecured["arrears"]["bucket"]) == (33, "DAYS_31_60")
        assert secured["arrears"]["nextDue"] == {"number": 3}
        assert (secured["later"]["daysPastDue"], unsecured["later"]["daysPastDue"]) == (97, 125)
        assert secured["payoffAmount"] == str(expected_payoff)
        assert two_decimals(unsecured["payoffAmount"])
        assert unsecured["payoffAmount"] != secured["payoffAmount"]
        assert Decimal(secured["laterPayoff"]) > Decimal(secured["payoffAmount"])
        assert secured["classificationSuggestion"]["classification"] == "SPECIAL_MENTION"
        assert secured["classificationSuggestion"]["daysPastDue"] == 5
        assert secured["classificationHistory"] == [
            {"classification": "SPECIAL_MENTION", "previous": "NORMAL", "reason": "逾期观察"}
        ]
        assert unsecured["classificationHistory"] == []
        assert secured["loanToValue"] == "0.0550" and unsecured["loanToValue"] is None
        (collateral,) = node["collateral"]
        assert [a["value"] for a in collateral["appraisals"]] == ["2000000.00"]
        assert collateral["loans"] == [{"id": secured["id"], "loanToValue": "0.0550"}]


LIST_LOANS = """
query ListLoans($first: Int!) {
  customers(first: $first) { edges { node { id ...Book } } }
}
fragment Book on Customer { loans { id status NEXT } }
"""
NEXT = "nextInstallment { number dueDate payment outstanding }"
ONE_CUSTOMER = """
query One($id: ID!) { customer(id: $id) { id loans { id status NEXT } } }
""".replace("NEXT", NEXT)


async def test_the_lists_loans_and_next_instalments_read_at_once_match_the_loaders(
    client, db, lifecycle, monkeypatch
):
    """Resolved by Strawberry (compiled reads off), the list reads its page's loans, and their
    next instalments, in one statement each (the fields then resolve without loaders), also when
    they are asked for in a fragment; compiled (ADR 0015), the page's one statement has them all;
    one customer's come through the loaders. All give the same answer."""
    fixture = await make_tenant(lifecycle, "listnext")
    tenant = fixture.tenant
    admin = await principal_of(db, tenant, fixture.admin_email)
    token = await api_token_for(db, tenant, fixture.admin_email)
    started = date.today().replace(day=1)
    for number in range(6):
        customer_id = await _customer(db, tenant, admin, name=f"客户 {number}")
        for _ in range(number % 3):  # none, one or two loans
            loan_id = await _loan(db, tenant, admin, customer_id, start_date=started, term_months=24)
            if number == 4:
                await _repay(db, tenant, admin, loan_id, "3000.00", started)  # part of the first
    await ok(client, token, LIST_LOANS.replace("NEXT", ""), {"first": 1})
    ids = "query L($first: Int!) { customers(first: $first) { edges { node { id } } } }"
    ids_only, _ = await _statements_for(client, db, token, ids, 10)

    async def refuse(self, keys):
        raise AssertionError("the list's loans went through a loader")

    async def not_compiled(self, *args):
        return None

    with monkeypatch.context() as patched:
        patched.setattr(Loaders, "_loans_by_customer", refuse)
        patched.setattr(Loaders, "_next_installment", refuse)
        loans_only, _ = await _statements_for(client, db, token, LIST_LOANS.replace("NEXT", ""), 10)
        with_next, compiled = await _statements_for(client, db, token, LIST_LOANS.replace("NEXT", NEXT), 10)
        assert (loans_only, with_next) == (ids_only, ids_only)
        patched.setattr(CompiledReads, "answer", not_compiled)
        ids_resolved, _ = await _statements_for(client, db, token, ids, 10)
        loans_only, _ = await _statements_for(client, db, token, LIST_LOANS.replace("NEXT", ""), 10)
        with_next, listed = await _statements_for(client, db, token, LIST_LOANS.replace("NEXT", NEXT), 10)
    assert (loans_only - ids_resolved, with_next - loans_only) == (1, 1)
    assert compiled == listed
    nodes = [edge["node"] for edge in listed["customers"]["edges"]]
    assert sorted(len(node["loans"]) for node in nodes) == [0, 0, 1, 1, 2, 2]
    due = [loan["nextInstallment"] for node in nodes for loan in node["loans"]]
    assert all(d["number"] == 1 for d in due) and len({d["outstanding"] for d in due}) == 2
    for node in nodes:
        assert (await ok(client, token, ONE_CUSTOMER, {"id": node["id"]}))["customer"] == node
    # Answers are compact UTF-8 JSON (msgspec), not \u escapes.
    named = await client.post(
        "/graphql",
        json={"query": "{ customers(first: 1) { edges { node { name } } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert named.headers["content-type"].startswith("application/json")
    assert "客户".encode() in named.content and b"\\u" not in named.content


async def test_a_failing_nested_list_is_masked_and_ends_the_transaction_cleanly(client, db, volume):
    """graphql-core cancels the siblings of a failed field; a statement cut off half-way would
    break the connection under the rollback (a 500). A real database error, no mocks."""
    schema = volume.tenant.schema
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'REVOKE SELECT ON "{schema}".installments FROM "{schema}"'))
    try:
        response = await client.post(
            "/graphql",
            json={"query": NESTED, "variables": {"first": 20}},
            headers={"Authorization": f"Bearer {volume.token}"},
        )
    finally:
        async with db.admin_engine.begin() as conn:
            await conn.execute(text(f'GRANT SELECT ON "{schema}".installments TO "{schema}"'))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert {error["message"] for error in body["errors"]} == {"Unexpected error."}
    # The schedule's read fails, and the transaction with it: which nested list reports it first
    # (the schedule, or a sibling's read after it) depends on the order the loaders' batches ran.
    assert body["errors"][0]["path"][:4] == ["customers", "edges", 0, "node"]
    assert body["errors"][0]["path"][-1] in {"schedule", "repayments", "loans", "collateral", "loanToValue"}
    # The connection went back to the pool in good order: the next operation works.
    assert len((await ok(client, volume.token, NESTED, {"first": 2}))["customers"]["edges"]) == 2


# --- writing ---

CREATE_CUSTOMER = """
mutation ($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on Customer {
      id gender birthDate maritalStatus occupation industry assets liabilities debtToIncome creditScore
      creditGrade tags source legalHold monthlyIncome collateral { id } loans { id }
    }
    ... on InputError { fields { field code message } }
  }
}
"""

UPDATE_CUSTOMER = """
mutation ($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) {
    __typename
    ... on Customer { id creditGrade creditScore tags source occupation debtToIncome }
    ... on InputError { fields { field code message } }
  }
}
"""


async def test_customers_take_the_profile_fields(client, book):
    token = book.tokens["officer"]
    profile = {
        "kind": "INDIVIDUAL",
        "name": "李四",
        "gender": "FEMALE",
        "birthDate": "1985-06-01",
        "maritalStatus": "MARRIED",
        "occupation": "教师",
        "industry": "教育",
        "monthlyIncome": "10000.00",
        "assets": "3500000",
        "liabilities": "600000.00",
        "creditScore": 712,
        "creditGrade": "AA",
        "tags": ["房抵", " 老客户 ", "房抵"],
        "source": "REFERRAL",
    }
    created = (await ok(client, token, CREATE_CUSTOMER, {"input": profile}))["createCustomer"]
    assert created["__typename"] == "Customer", created
    assert (created["gender"], created["birthDate"], created["maritalStatus"]) == (
        "FEMALE",
        "1985-06-01",
        "MARRIED",
    )
    assert (created["occupation"], created["industry"]) == ("教师", "教育")
    assert (created["assets"], created["liabilities"], created["debtToIncome"]) == (
        "3500000.00",
        "600000.00",
        "5.0000",
    )
    assert (created["creditScore"], created["creditGrade"], created["source"]) == (712, "AA", "REFERRAL")
    assert created["tags"] == ["房抵", "老客户"]
    assert (created["legalHold"], created["collateral"], created["loans"]) == (False, [], [])

    updated = (
        await ok(
            client,
            token,
            UPDATE_CUSTOMER,
            {"id": created["id"], "input": {"creditGrade": "BBB", "tags": [], "liabilities": "120000"}},
        )
    )["updateCustomer"]
    assert (updated["creditGrade"], updated["creditScore"], updated["tags"]) == ("BBB", 712, [])
    assert (updated["source"], updated["occupation"], updated["debtToIncome"]) == (
        "REFERRAL",
        "教师",
        "1.0000",
    )


async def test_customer_profile_input_is_refused_field_by_field(client, db, book):
    before = await snapshot(db, book.tenant)
    bad = {
        "kind": "ENTERPRISE",
        "name": "某某公司",
        "gender": "MALE",  # individuals only
        "assets": "-1",
        "creditScore": 1001,
        "tags": ["x" * 31],
    }
    result = (await ok(client, book.tokens["officer"], CREATE_CUSTOMER, {"input": bad}))["createCustomer"]
    assert result["__typename"] == "InputError"
    assert {(f["field"], f["code"]) for f in result["fields"]} == {
        ("gender", "individual_only"),
        ("assets", "invalid_amount"),
        ("creditScore", "invalid_score"),
        ("tags", "invalid_tags"),
    }
    assert await snapshot(db, book.tenant) == before


CREATE_COLLATERAL = """
mutation ($customerId: ID!, $input: CreateCollateralInput!) {
  createCollateral(customerId: $customerId, input: $input) {
    __typename
    ... on Collateral {
      id customerId kind description areaM2 appraisedValue appraisedOn titleStatus lienOrder
      appraiser: appraisals { appraiser }
    }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""

UPDATE_COLLATERAL = """
mutation ($id: ID!, $input: UpdateCollateralInput!) {
  updateCollateral(id: $id, input: $input) {
    __typename
    ... on Collateral { id kind description titleStatus lienOrder appraisedValue }
    ... on InputError { fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""

ADD_APPRAISAL = """
mutation ($id: ID!, $input: AppraisalInput!) {
  addAppraisal(collateralId: $id, input: $input) {
    __typename
    ... on Collateral { id appraisedValue appraisedOn appraisals { value appraisedOn appraiser } }
    ... on InputError { fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""


async def test_collateral_is_created_updated_and_appraised(client, book):
    token = book.tokens["officer"]
    created = (
        await ok(
            client,
            token,
            CREATE_COLLATERAL,
            {
                "customerId": book.customer_id,
                "input": {
                    "kind": "VEHICLE",
                    "description": "比亚迪 汉",
                    "appraisedValue": "180000",
                    "appraisedOn": "2025-01-10",
                    "appraiser": "车辆评估所",
                    "titleStatus": "MORTGAGED",
                    "lienOrder": 2,
                },
            },
        )
    )["createCollateral"]
    assert created["__typename"] == "Collateral", created
    assert (created["customerId"], created["kind"], created["areaM2"]) == (book.customer_id, "VEHICLE", None)
    assert (created["appraisedValue"], created["appraisedOn"]) == ("180000.00", "2025-01-10")
    assert (created["titleStatus"], created["lienOrder"]) == ("MORTGAGED", 2)
    assert created["appraiser"] == [{"appraiser": "车辆评估所"}]

    updated = (
        await ok(
            client,
            token,
            UPDATE_COLLATERAL,
            {"id": created["id"], "input": {"description": "比亚迪 汉 EV", "titleStatus": "CLEAR"}},
        )
    )["updateCollateral"]
    assert updated == {
        "__typename": "Collateral",
        "id": created["id"],
        "kind": "VEHICLE",
        "description": "比亚迪 汉 EV",
        "titleStatus": "CLEAR",
        "lienOrder": 2,
        "appraisedValue": "180000.00",
    }

    appraised = (
        await ok(
            client,
            token,
            ADD_APPRAISAL,
            {
                "id": created["id"],
                "input": {"appraisedValue": "150000.5", "appraisedOn": "2025-06-30", "appraiser": "复评"},
            },
        )
    )["addAppraisal"]
    assert (appraised["appraisedValue"], appraised["appraisedOn"]) == ("150000.50", "2025-06-30")
    assert [(a["value"], a["appraisedOn"]) for a in appraised["appraisals"]] == [
        ("150000.50", "2025-06-30"),
        ("180000.00", "2025-01-10"),
    ]


CREATE_LOAN = """
mutation ($customerId: ID!, $input: CreateLoanInput!) {
  createLoan(customerId: $customerId, input: $input) {
    __typename
    ... on Loan {
      id customerId product amount annualRate termMonths method startDate firstDueDate status classification
      flags collateral { id } schedule { number dueDate principal interest payment }
      arrears(asOf: "2025-03-01") { daysPastDue overdueAmount bucket }
    }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { message permission }
  }
}
"""

LOAN_INPUT = {
    "product": "经营贷",
    "amount": "300000",
    "annualRate": "0.0435",
    "termMonths": 24,
    "method": "EQUAL_INSTALLMENT",
    "startDate": "2025-01-20",
    "firstDueDate": "2025-02-25",
}


async def test_a_loan_is_created_with_its_schedule(client, book):
    variables = {
        "customerId": book.customer_id,
        "input": {**LOAN_INPUT, "collateralIds": [book.collateral_id], "flags": ["LITIGATION"]},
    }
    loan = (await ok(client, book.tokens["officer"], CREATE_LOAN, variables))["createLoan"]
    assert loan["__typename"] == "Loan", loan
    assert (loan["customerId"], loan["product"], loan["amount"], loan["annualRate"]) == (
        book.customer_id,
        "经营贷",
        "300000.00",
        "0.043500",
    )
    assert (loan["method"], loan["termMonths"], loan["status"], loan["classification"]) == (
        "EQUAL_INSTALLMENT",
        24,
        "ACTIVE",
        "NORMAL",
    )
    assert (loan["startDate"], loan["firstDueDate"], loan["flags"]) == (
        "2025-01-20",
        "2025-02-25",
        ["LITIGATION"],
    )
    assert [c["id"] for c in loan["collateral"]] == [book.collateral_id]
    contract = build_schedule(
        Decimal("300000"), Decimal("0.0435"), 24, "equal_installment", date(2025, 1, 20), date(2025, 2, 25)
    )
    assert [row["payment"] for row in loan["schedule"]] == [str(i.payment) for i in contract.installments]
    assert loan["schedule"][0]["dueDate"] == "2025-02-25"
    assert loan["arrears"] == {
        "daysPastDue": 4,
        "overdueAmount": str(contract.installments[0].payment),
        "bucket": "DAYS_1_30",
    }


REPAY = """
mutation ($loanId: ID!, $input: RepaymentInput!) {
  recordRepayment(loanId: $loanId, input: $input) {
    __typename
    ... on RepaymentOutcome {
      repayment { id loanId amount paidOn channel reference reversed }
      loan {
        id status settledOn
        schedule { number principalPaid interestPaid paidOn }
        arrears(asOf: "2025-02-16") { daysPastDue }
      }
    }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""

REVERSE = """
mutation ($id: ID!, $reason: String!) {
  reverseRepayment(id: $id, reason: $reason) {
    __typename
    ... on RepaymentOutcome {
      repayment { id reversed reversedAt reversalReason }
      loan { id schedule { number principalPaid paidOn } repayments { id reversed } }
    }
    ... on InputError { fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""


async def test_a_repayment_is_recorded_then_reversed(client, db, lifecycle):
    # A tenant of its own: settling and reversing changes what other tests read.
    fixture = await make_tenant(lifecycle, "repay")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    customer_id = await _customer(db, fixture.tenant, admin, name="赵六")
    loan_id = str(await _loan(db, fixture.tenant, admin, customer_id))
    token = await api_token_for(db, fixture.tenant, fixture.admin_email)

    recorded = (
        await ok(
            client,
            token,
            REPAY,
            {
                "loanId": loan_id,
                "input": {
                    "amount": "10600",
                    "paidOn": "2025-02-15",
                    "channel": "ALIPAY",
                    "reference": "支付宝 88",
                },
            },
        )
    )["recordRepayment"]
    assert recorded["__typename"] == "RepaymentOutcome", recorded
    repayment = recorded["repayment"]
    assert (repayment["loanId"], repayment["amount"], repayment["paidOn"]) == (
        loan_id,
        "10600.00",
        "2025-02-15",
    )
    assert (repayment["channel"], repayment["reference"], repayment["reversed"]) == (
        "ALIPAY",
        "支付宝 88",
        False,
    )
    loan = recorded["loan"]
    assert loan["schedule"][0] == {
        "number": 1,
        "principalPaid": "10000.00",
        "interestPaid": "600.00",
        "paidOn": "2025-02-15",
    }
    assert loan["arrears"]["daysPastDue"] == 0

    reversed_ = (await ok(client, token, REVERSE, {"id": repayment["id"], "reason": "重复入账"}))[
        "reverseRepayment"
    ]
    assert reversed_["__typename"] == "RepaymentOutcome", reversed_
    assert (
        reversed_["repayment"]["reversed"] is True and reversed_["repayment"]["reversalReason"] == "重复入账"
    )
    assert reversed_["repayment"]["reversedAt"]
    assert reversed_["loan"]["schedule"][0] == {"number": 1, "principalPaid": "0.00", "paidOn": None}
    assert reversed_["loan"]["repayments"] == [{"id": repayment["id"], "reversed": True}]

    # A second reversal of the same repayment is refused, and changes nothing.
    before = await snapshot(db, fixture.tenant)
    again = (await ok(client, token, REVERSE, {"id": repayment["id"], "reason": "重复入账"}))[
        "reverseRepayment"
    ]
    assert again["__typename"] == "InputError"
    assert [(f["field"], f["code"]) for f in again["fields"]] == [("repayment", "already_reversed")]
    assert await snapshot(db, fixture.tenant) == before

    # Settling the loan in one repayment: its payoff amount on the day.
    payoff = await ok(
        client,
        token,
        'query ($id: ID!) { loan(id: $id) { payoffAmount(on: "2025-02-15") } }',
        {"id": loan_id},
    )
    amount = payoff["loan"]["payoffAmount"]
    settled = (
        await ok(
            client, token, REPAY, {"loanId": loan_id, "input": {"amount": amount, "paidOn": "2025-02-15"}}
        )
    )["recordRepayment"]
    assert (settled["loan"]["status"], settled["loan"]["settledOn"]) == ("SETTLED", "2025-02-15")


CLASSIFY = """
mutation ($id: ID!, $classification: LoanClassification!, $reason: String!) {
  classifyLoan(id: $id, classification: $classification, reason: $reason) {
    __typename
    ... on Loan {
      id classification
      classificationHistory { classification previous suggested daysPastDue reason decidedBy decidedAt }
    }
    ... on InputError { fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { message permission }
  }
}
"""

SET_FLAGS = """
mutation ($id: ID!, $flags: [LoanFlag!]!) {
  setLoanFlags(id: $id, flags: $flags) {
    __typename
    ... on Loan {
      id flags classificationSuggestion(asOf: "2025-02-01") { classification matchedRules { flag } }
    }
    ... on InputError { fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""

REPLACE_RULES = """
mutation ($rules: [ClassificationRuleInput!]!) {
  replaceClassificationRules(rules: $rules) {
    __typename
    ... on ClassificationRuleSet { rules { classification minDaysPastDue flag } }
    ... on InputError { message fields { field code message } }
    ... on PermissionError { permission }
  }
}
"""


async def test_a_risk_officer_classifies_and_flags_a_loan(client, db, lifecycle):
    fixture = await make_tenant(lifecycle, "classify")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    customer_id = await _customer(db, fixture.tenant, admin, name="钱七")
    loan_id = str(await _loan(db, fixture.tenant, admin, customer_id))
    risk = await api_token_for(db, fixture.tenant, await add_user(db, fixture.tenant, "risk_officer"))

    flagged = (await ok(client, risk, SET_FLAGS, {"id": loan_id, "flags": ["RESTRUCTURED", "FRAUD"]}))[
        "setLoanFlags"
    ]
    assert flagged["__typename"] == "Loan", flagged
    assert flagged["flags"] == ["RESTRUCTURED", "FRAUD"]
    # Not yet overdue on 2025-02-01, but restructured: the default rules say substandard.
    assert flagged["classificationSuggestion"] == {
        "classification": "SUBSTANDARD",
        "matchedRules": [{"flag": "RESTRUCTURED"}],
    }

    classified = (
        await ok(
            client, risk, CLASSIFY, {"id": loan_id, "classification": "SUBSTANDARD", "reason": "重组贷款"}
        )
    )["classifyLoan"]
    assert classified["__typename"] == "Loan", classified
    assert classified["classification"] == "SUBSTANDARD"
    (decision,) = classified["classificationHistory"]
    assert (decision["classification"], decision["previous"], decision["reason"]) == (
        "SUBSTANDARD",
        "NORMAL",
        "重组贷款",
    )
    assert decision["suggested"] in {"SUBSTANDARD", "DOUBTFUL", "LOSS"}  # today: long overdue as well
    assert decision["decidedBy"] and decision["decidedAt"]

    rules = [
        {"classification": "SPECIAL_MENTION", "minDaysPastDue": 30},
        {"classification": "LOSS", "flag": "FRAUD"},
    ]
    replaced = (await ok(client, risk, REPLACE_RULES, {"rules": rules}))["replaceClassificationRules"]
    assert replaced["__typename"] == "ClassificationRuleSet", replaced
    assert replaced["rules"] == [
        {"classification": "SPECIAL_MENTION", "minDaysPastDue": 30, "flag": None},
        {"classification": "LOSS", "minDaysPastDue": None, "flag": "FRAUD"},
    ]
    after = (await ok(client, risk, SET_FLAGS, {"id": loan_id, "flags": ["FRAUD"]}))["setLoanFlags"]
    assert after["classificationSuggestion"]["classification"] == "LOSS"


# --- refusals: typed InputError fields, nothing written ---

REFUSALS = [
    pytest.param(
        CREATE_COLLATERAL,
        lambda b: {
            "customerId": b.customer_id,
            "input": {"kind": "LAND", "appraisedValue": "-5", "areaM2": "0", "appraisedOn": "2999-01-01"},
        },
        "createCollateral",
        {("appraisedValue", "invalid_amount"), ("areaM2", "invalid_area"), ("appraisedOn", "invalid_date")},
        id="createCollateral",
    ),
    pytest.param(
        UPDATE_COLLATERAL,
        lambda b: {"id": b.collateral_id, "input": {"lienOrder": 12, "location": "x" * 201}},
        "updateCollateral",
        {("lienOrder", "invalid_lien_order"), ("location", "too_long")},
        id="updateCollateral",
    ),
    pytest.param(
        CREATE_COLLATERAL,
        lambda b: {
            "customerId": b.customer_id,
            "input": {"kind": "RESIDENCE", "appraisedValue": "100000", "lienOrder": 0},
        },
        "createCollateral",
        {("lienOrder", "invalid_lien_order")},
        id="createCollateral-lien-order-0",
    ),
    pytest.param(
        UPDATE_COLLATERAL,
        lambda b: {"id": b.collateral_id, "input": {"lienOrder": 0}},
        "updateCollateral",
        {("lienOrder", "invalid_lien_order")},
        id="updateCollateral-lien-order-0",
    ),
    pytest.param(
        ADD_APPRAISAL,
        lambda b: {"id": b.collateral_id, "input": {"appraisedValue": "1.234", "appraisedOn": "1949-12-31"}},
        "addAppraisal",
        {("appraisedValue", "invalid_amount"), ("appraisedOn", "invalid_date")},
        id="addAppraisal",
    ),
    pytest.param(
        CREATE_LOAN,
        lambda b: {
            "customerId": b.customer_id,
            "input": {**LOAN_INPUT, "product": " ", "amount": "0", "annualRate": "4.35", "termMonths": 481},
        },
        "createLoan",
        {
            ("product", "required"),
            ("amount", "invalid_amount"),
            ("annualRate", "invalid_rate"),
            ("termMonths", "invalid_term"),
        },
        id="createLoan",
    ),
    pytest.param(
        CREATE_LOAN,
        lambda b: {"customerId": b.customer_id, "input": {**LOAN_INPUT, "firstDueDate": "2025-01-01"}},
        "createLoan",
        {("firstDueDate", "invalid_first_due_date")},
        id="createLoan-first-due-date",
    ),
    pytest.param(
        CREATE_LOAN,
        lambda b: {"customerId": b.customer_id, "input": {**LOAN_INPUT, "amount": "1000000000000"}},
        "createLoan",
        {("amount", "too_large")},
        id="createLoan-over-the-maximum",
    ),
    pytest.param(
        CREATE_LOAN,
        lambda b: {
            "customerId": b.customer_id,
            "input": {**LOAN_INPUT, "collateralIds": [str(uuid.uuid4())]},
        },
        "createLoan",
        {("collateralIds", "not_this_customer")},
        id="createLoan-collateral",
    ),
    pytest.param(
        REPAY,
        lambda b: {"loanId": b.loan_id, "input": {"amount": "0", "paidOn": "2025-01-01"}},
        "recordRepayment",
        {("amount", "invalid_amount"), ("paidOn", "invalid_paid_on")},
        id="recordRepayment",
    ),
    pytest.param(
        REPAY,
        lambda b: {"loanId": b.loan_id, "input": {"amount": "999999999", "paidOn": "2025-03-01"}},
        "recordRepayment",
        {("amount", "overpayment")},
        id="recordRepayment-overpayment",
    ),
    pytest.param(
        REVERSE,
        lambda b: {"id": b.repayment_id, "reason": " x "},
        "reverseRepayment",
        {("reason", "required")},
        id="reverseRepayment",
    ),
    pytest.param(
        CLASSIFY,
        lambda b: {"id": b.loan_id, "classification": "DOUBTFUL", "reason": "no"},
        "classifyLoan",
        {("reason", "required")},
        id="classifyLoan",
    ),
    pytest.param(
        REPLACE_RULES,
        lambda b: {
            "rules": [
                {"classification": "NORMAL", "minDaysPastDue": 1},
                {"classification": "LOSS", "minDaysPastDue": 400, "flag": "FRAUD"},
                {"classification": "DOUBTFUL", "minDaysPastDue": 0},
            ]
        },
        "replaceClassificationRules",
        {
            ("rules.0.classification", "invalid_choice"),
            ("rules.1", "one_condition"),
            ("rules.2.minDaysPastDue", "invalid_days"),
        },
        id="replaceClassificationRules",
    ),
]


@pytest.mark.parametrize(("mutation", "variables", "field", "expected"), REFUSALS)
async def test_every_mutation_refuses_bad_input_and_writes_nothing(
    client, db, book, mutation, variables, field, expected
):
    before = await snapshot(db, book.tenant)
    result = (await ok(client, book.tokens["admin"], mutation, variables(book)))[field]
    assert result["__typename"] == "InputError", result
    assert {(f["field"], f["code"]) for f in result["fields"]} == expected
    assert all(f["message"] and "{" not in f["message"] for f in result["fields"])
    assert await snapshot(db, book.tenant) == before


async def test_a_loan_over_the_maximum_is_refused_in_the_pages_words(client, book):
    result = (
        await ok(
            client,
            book.tokens["officer"],
            CREATE_LOAN,
            {"customerId": book.customer_id, "input": {**LOAN_INPUT, "amount": "1E+13"}},
        )
    )["createLoan"]
    message = "A loan must be less than 1,000,000,000,000 yuan."
    assert result["fields"] == [{"field": "amount", "code": "too_large", "message": message}]


async def test_an_overpayment_names_the_most_that_settles(client, book):
    result = (
        await ok(
            client,
            book.tokens["officer"],
            REPAY,
            {"loanId": book.loan_id, "input": {"amount": "999999999", "paidOn": "2025-02-10"}},
        )
    )["recordRepayment"]
    (error,) = result["fields"]
    assert "120,600.00" in error["message"]


async def test_a_refused_mutation_leaves_the_rest_of_the_operation_standing(client, db, book):
    """Each mutation is its own savepoint: a refusal in the middle rolls back only itself."""
    operation = """
    mutation ($id: ID!) {
      good: updateCollateral(id: $id, input: {description: "一号楼"}) { __typename }
      bad: updateCollateral(id: $id, input: {lienOrder: 12, description: "二号楼"}) { __typename }
      read: addAppraisal(collateralId: $id, input: {appraisedValue: "2000000", appraisedOn: "2025-01-01"}) {
        __typename ... on Collateral { description appraisals { value } }
      }
    }
    """
    data = await ok(client, book.tokens["officer"], operation, {"id": book.collateral_id})
    assert (data["good"]["__typename"], data["bad"]["__typename"]) == ("Collateral", "InputError")
    assert data["read"]["description"] == "一号楼"


# --- permissions and record scope ---


async def test_a_viewer_cannot_create_a_loan(client, db, book):
    before = await snapshot(db, book.tenant)
    variables = {"customerId": book.customer_id, "input": LOAN_INPUT}
    result = (await ok(client, book.tokens["viewer"], CREATE_LOAN, variables))["createLoan"]
    assert result == {
        "__typename": "PermissionError",
        "message": "missing permission loans.write",
        "permission": "loans.write",
    }
    assert await snapshot(db, book.tenant) == before


@pytest.mark.parametrize(
    ("mutation", "variables", "field"),
    [
        (
            CLASSIFY,
            lambda b: {"id": b.loan_id, "classification": "LOSS", "reason": "损失确认"},
            "classifyLoan",
        ),
        (SET_FLAGS, lambda b: {"id": b.loan_id, "flags": ["FRAUD"]}, "setLoanFlags"),
        (REPLACE_RULES, lambda b: {"rules": []}, "replaceClassificationRules"),
    ],
)
async def test_a_loan_officer_cannot_classify(client, db, book, mutation, variables, field):
    before = await snapshot(db, book.tenant)
    result = (await ok(client, book.tokens["officer"], mutation, variables(book)))[field]
    assert (result["__typename"], result["permission"]) == ("PermissionError", "loans.classify")
    assert await snapshot(db, book.tenant) == before


async def test_another_officers_book_looks_missing(client, db, book):
    token = book.tokens["other_officer"]
    one = "query ($id: ID!) { loan(id: $id) { id } collateral(id: $id) { id } customer(id: $id) { id } }"
    assert (await ok(client, token, one, {"id": book.loan_id}))["loan"] is None
    assert (await ok(client, token, one, {"id": book.collateral_id}))["collateral"] is None
    assert (await ok(client, token, one, {"id": book.customer_id}))["customer"] is None
    listed = await portfolio(client, token, filter={"customerId": book.customer_id})
    assert (listed["totalCount"], listed["edges"]) == (0, [])

    before = await snapshot(db, book.tenant)
    writes = [
        (
            REPAY,
            {"loanId": book.loan_id, "input": {"amount": "100", "paidOn": "2025-03-01"}},
            "recordRepayment",
            book.loan_id,
        ),
        (REVERSE, {"id": book.repayment_id, "reason": "不是我的"}, "reverseRepayment", book.repayment_id),
        (CREATE_LOAN, {"customerId": book.customer_id, "input": LOAN_INPUT}, "createLoan", book.customer_id),
        (
            CREATE_COLLATERAL,
            {"customerId": book.customer_id, "input": {"kind": "LAND", "appraisedValue": "1"}},
            "createCollateral",
            book.customer_id,
        ),
        (
            UPDATE_COLLATERAL,
            {"id": book.collateral_id, "input": {"lienOrder": 2}},
            "updateCollateral",
            book.collateral_id,
        ),
        (
            ADD_APPRAISAL,
            {"id": book.collateral_id, "input": {"appraisedValue": "1"}},
            "addAppraisal",
            book.collateral_id,
        ),
    ]
    for mutation, variables, field, target in writes:
        result = (await ok(client, token, mutation, variables))[field]
        assert result == {"__typename": "NotFoundError", "id": target}, field
    assert await snapshot(db, book.tenant) == before


async def test_missing_and_malformed_ids_are_not_found(client, book):
    token = book.tokens["admin"]
    for value in (str(uuid.uuid4()), "not-an-id"):
        data = await ok(
            client,
            token,
            "query ($id: ID!) { loan(id: $id) { id } collateral(id: $id) { id } }",
            {"id": value},
        )
        assert data == {"loan": None, "collateral": None}
        result = (
            await ok(client, token, CLASSIFY, {"id": value, "classification": "LOSS", "reason": "测试用"})
        )["classifyLoan"]
        assert result == {"__typename": "NotFoundError", "id": value}


async def test_another_tenants_loan_looks_missing(client, book, token_b):
    data = await ok(client, token_b, "query ($id: ID!) { loan(id: $id) { id } }", {"id": book.loan_id})
    assert data == {"loan": None}
