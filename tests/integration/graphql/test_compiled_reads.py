"""Compiled reads (ADR 0015) answer exactly what Strawberry answers, or leave the operation to it.

Every operation here is sent twice over HTTP: as the app runs (compiled when it can be), and
with compiled reads switched off (Strawberry resolving field by field). The two bodies must be
equal byte for byte in their JSON, key order included, and each test says whether the compiled
path was the one that answered.
"""

from __future__ import annotations

import json
from datetime import date

import httpx
import pytest
from sqlalchemy import text

from tenantcrm.graphql.compiled import CompiledReads
from tenantcrm.loans.service import LoanService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, api_token_for, make_tenant, principal_of

CUSTOMER_FIELDS = """
  id kind name regionCode regionName monthlyIncome gender birthDate maritalStatus occupation industry
  assets liabilities creditScore creditGrade tags source legalHold riskLevel status nationalId phone
  email address createdAt updatedAt __typename owner { id displayName __typename }
"""
LOAN_FIELDS = """
  id customerId product amount annualRate termMonths method startDate firstDueDate status
  classification flags settledOn createdAt updatedAt __typename
  nextInstallment { number dueDate principal interest payment principalPaid interestPaid outstanding
                    paidOn __typename }
"""
EVERYTHING = f"""
query Everything($first: Int, $after: String, $last: Int, $before: String,
                 $filter: CustomerFilterInput, $orderBy: CustomerOrderInput) {{
  customers(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {{
    __typename totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor __typename }}
    edges {{ __typename cursor node {{ {CUSTOMER_FIELDS} loans {{ {LOAN_FIELDS} }} }} }}
  }}
}}
"""
CREATE = """
mutation ($input: CreateCustomerInput!) {
  createCustomer(input: $input) { ... on Customer { id } ... on InputError { fields { field code } } }
}
"""
PROFILES = [
    {
        "kind": "INDIVIDUAL",
        "name": "李四",
        "regionCode": "310000",
        "gender": "FEMALE",
        "birthDate": "1985-06-01",
        "maritalStatus": "MARRIED",
        "occupation": "教师",
        "industry": "教育",
        "monthlyIncome": "10000.5",
        "assets": "3500000",
        "liabilities": "600000.00",
        "creditScore": 712,
        "creditGrade": "AA",
        "tags": ["房抵", "老客户"],
        "source": "WALK_IN",
        "riskLevel": "HIGH",
        "status": "ACTIVE",
        "phone": "13800138000",
        "email": "li.si@example.com",
        "address": "上海市浦东新区世纪大道 100 号",
    },
    {"kind": "ENTERPRISE", "name": "广州某某贸易有限公司", "riskLevel": "MEDIUM", "status": "PROSPECT"},
    {"kind": "INDIVIDUAL", "name": '王五 "引号" 与 \\ 反斜杠', "monthlyIncome": "0"},
    *({"kind": "INDIVIDUAL", "name": f"客户{n}", "monthlyIncome": f"{1000 * n}.00"} for n in range(1, 6)),
]


async def post(client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> str:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.text


class Both:
    """Sends an operation compiled (when it can be) and resolved by Strawberry."""

    def __init__(self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client, self.monkeypatch = client, monkeypatch
        self.compiled = 0
        answer = CompiledReads.answer

        async def counting(reads, *args):
            data = await answer(reads, *args)
            self.compiled += data is not None
            return data

        monkeypatch.setattr(CompiledReads, "answer", counting)

    async def __call__(self, token: str, query: str, variables: dict | None = None) -> tuple[list, bool]:
        before = self.compiled
        compiled_body = await post(self.client, token, query, variables)
        used = self.compiled > before

        async def off(reads, *args):
            return None

        with self.monkeypatch.context() as patched:
            patched.setattr(CompiledReads, "answer", off)
            resolved_body = await post(self.client, token, query, variables)
        ordered = json.loads(compiled_body, object_pairs_hook=list)
        assert ordered == json.loads(resolved_body, object_pairs_hook=list), (compiled_body, resolved_body)
        return json.loads(compiled_body), used


@pytest.fixture
def both(client, monkeypatch) -> Both:
    return Both(client, monkeypatch)


@pytest.fixture(scope="module")
async def book(db, lifecycle, app):
    fixture = await make_tenant(lifecycle, "compiled")
    tenant = fixture.tenant
    officer_email = await add_user(db, tenant, "loan_officer")
    tokens = {
        "admin": await api_token_for(db, tenant, fixture.admin_email),
        "officer": await api_token_for(db, tenant, officer_email),
    }
    ids = []
    transport = httpx.ASGITransport(app=app, client=("198.51.100.250", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for number, profile in enumerate(PROFILES):
            token = tokens["officer" if number % 3 == 0 else "admin"]
            body = json.loads(await post(client, token, CREATE, {"input": profile}))
            assert "id" in body["data"]["createCustomer"], (profile, body)
            ids.append(body["data"]["createCustomer"]["id"])
    officer = await principal_of(db, tenant, officer_email)
    admin = await principal_of(db, tenant, fixture.admin_email)
    start = date.today().replace(day=1)
    terms = {"product": "经营贷", "amount": "120000.00", "annual_rate": "0.0615", "term_months": 12}
    async with tenant_session(db, tenant) as session:
        loans = LoanService(session, admin)
        first = await loans.create_loan(ids[0], {**terms, "method": "equal_principal", "start_date": start})
        await loans.create_loan(
            ids[0],
            {**terms, "method": "interest_only", "start_date": date(2024, 1, 15), "flags": ["litigation"]},
        )
        await loans.create_loan(ids[3], {**terms, "method": "bullet", "start_date": start, "amount": "5000"})
    async with tenant_session(db, tenant) as session:
        await LoanService(session, admin).record_repayment(
            first.id, {"amount": "3000.00", "paid_on": date.today(), "channel": "wechat", "reference": "T-1"}
        )
    async with db.admin_engine.begin() as conn:  # isoformat() leaves out a zero fraction of a second
        await conn.execute(
            text(f'UPDATE "{tenant.schema}".customers SET updated_at = date_trunc(\'second\', updated_at)')
        )
    return {"tenant": tenant, "tokens": tokens, "ids": ids, "officer": officer}


async def test_every_compiled_field_matches_strawberry_page_by_page_both_ways(both, book):
    token = book["tokens"]["admin"]
    seen, after = [], None
    while True:
        data, used = await both(token, EVERYTHING, {"first": 3, "after": after})
        assert used
        connection = data["data"]["customers"]
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(book["ids"]) and connection["totalCount"] == len(PROFILES)
    back, before = [], None
    while True:
        data, used = await both(token, EVERYTHING, {"last": 3, "before": before})
        assert used
        connection = data["data"]["customers"]
        back = [edge["node"]["id"] for edge in connection["edges"]] + back
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]
    assert back == seen
    nodes = {
        edge["node"]["id"]: edge["node"]
        for edge in (await both(token, EVERYTHING, {"first": 20}))[0]["data"]["customers"]["edges"]
    }
    full = nodes[book["ids"][0]]
    assert (full["regionName"], full["monthlyIncome"], full["tags"]) == (
        "上海市",
        "10000.50",
        ["房抵", "老客户"],
    )
    assert [loan["flags"] for loan in full["loans"]] == [["LITIGATION"], []]
    assert full["loans"][1]["nextInstallment"]["principalPaid"] != "0.00"
    assert nodes[book["ids"][2]]["regionName"] is None and nodes[book["ids"][1]]["tags"] == []


@pytest.mark.parametrize(
    "variables",
    [
        {"orderBy": {"field": field, "direction": direction}, "first": 4}
        for field in ("CREATED_AT", "NAME", "MONTHLY_INCOME")
        for direction in ("ASC", "DESC")
    ]
    + [
        {"filter": {"riskLevel": "HIGH"}},
        {"filter": {"status": "PROSPECT"}, "first": 1},
        {"filter": {"search": "客户"}, "last": 2},
        {"filter": {"search": "13800138000"}},  # a whole phone number: the blind index
        {"filter": {"search": "没有这个人"}},
    ],
)
async def test_orders_and_filters_match(both, book, variables):
    data, used = await both(book["tokens"]["admin"], EVERYTHING, variables)
    assert used and "errors" not in data


async def test_pages_in_every_order_match_when_walked_by_cursor(both, book):
    token = book["tokens"]["admin"]
    for field in ("NAME", "MONTHLY_INCOME"):
        order = {"field": field, "direction": "ASC"}
        first, _ = await both(token, EVERYTHING, {"first": 2, "orderBy": order})
        cursor = first["data"]["customers"]["pageInfo"]["endCursor"]
        _, used = await both(token, EVERYTHING, {"first": 2, "after": cursor, "orderBy": order})
        assert used


async def test_aliases_fragments_and_two_lists_in_one_operation_match(both, book):
    query = """
    query Shapes($n: Int!) {
      kind: __typename
      newest: customers(first: $n) { ...Page edges { node { ...Who alias: name } } }
      richest: customers(first: 2, orderBy: {field: MONTHLY_INCOME, direction: DESC}) {
        count: totalCount
        edges { node { ... on Customer { income: monthlyIncome id } loans { amount amount } } }
      }
    }
    fragment Page on CustomerConnection { more: pageInfo { hasNextPage } edges { at: cursor } }
    fragment Who on Customer {
      id name owner { name: displayName } loans { due: nextInstallment { dueDate } }
    }
    """
    data, used = await both(book["tokens"]["admin"], query, {"n": 3})
    assert used and data["data"]["kind"] == "Query"
    assert list(data["data"]["newest"]) == ["more", "edges"]


async def test_record_scope_applies_to_the_compiled_list(both, book):
    data, used = await both(book["tokens"]["officer"], EVERYTHING, {"first": 20})
    assert used
    owned = {edge["node"]["id"] for edge in data["data"]["customers"]["edges"]}
    assert owned == {book["ids"][n] for n in range(len(PROFILES)) if n % 3 == 0}
    assert data["data"]["customers"]["totalCount"] == len(owned)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (EVERYTHING, {"after": "not-a-cursor"}),
        (EVERYTHING, {"first": 0}),
        (EVERYTHING, {"first": 101}),
        (EVERYTHING, {"first": "three"}),
        (EVERYTHING, {"orderBy": {"field": "AGE"}}),
        ('query { customers { edges { node { id } } } customer(id: "x") { id } }', {}),
        ("query ($t: Boolean!) { customers { edges { node { id phone @include(if: $t) } } } }", {"t": False}),
        ("query { customers { edges { node { debtToIncome loans { arrears { daysPastDue } } } } } }", {}),
        ("query { customers { totalCount nope } }", {}),
        ("mutation { __typename }", {}),
    ],
)
async def test_what_the_compiled_path_would_refuse_or_not_build_goes_to_strawberry(
    both, book, query, variables
):
    _, used = await both(book["tokens"]["admin"], query, variables)
    assert not used


async def test_a_token_without_customers_read_is_refused_as_before(both, book, db):
    tenant = book["tenant"]
    async with tenant_session(db, tenant) as session:
        from tenantcrm.auth.service import create_api_token, find_user_by_email

        user = await find_user_by_email(session, book["officer"].email)
        narrow = await create_api_token(session, tenant, user, "narrow", permissions=["customers.write"])
    data, used = await both(narrow, EVERYTHING, {"first": 1})
    assert not used and data["errors"]


def test_the_differential_query_asks_for_every_field_the_statement_builds():
    from tenantcrm.customers.json_read import CUSTOMER_SCALARS, USER_REF
    from tenantcrm.loans.json_read import LOAN_SCALARS

    def names(text: str) -> set[str]:
        return {word for word in text.replace("{", " ").replace("}", " ").split()}

    customer = names(CUSTOMER_FIELDS.split("owner")[0])
    assert customer == set(CUSTOMER_SCALARS)
    assert names(CUSTOMER_FIELDS.split("owner")[1]) == {*USER_REF, "__typename"}
    assert names(LOAN_FIELDS.split("nextInstallment")[0]) == set(LOAN_SCALARS)
