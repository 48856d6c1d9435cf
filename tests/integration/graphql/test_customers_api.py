"""The customers GraphQL API over HTTP: pagination, filters, mutations, auth, limits, masking.

Ordering and pagination run against tenants of this module alone, so every count is exact.
Writes go to tenant A; each write test counts the tenant's customers before and after.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tenantcrm.auth.service import find_user_by_email, revoke_api_tokens_named
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, api_token_for, make_tenant, principal_of

# --- helpers ---


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post(client: httpx.AsyncClient, token: str | None, query: str, variables: dict | None = None):
    headers = bearer(token) if token else {}
    return await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def ok(client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> dict:
    """The data of an operation that must succeed."""
    response = await post(client, token, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def refused(client: httpx.AsyncClient, token: str, query: str, variables: dict | None = None) -> dict:
    """The body of an operation that must report errors (never a 5xx)."""
    response = await post(client, token, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("errors"), f"expected errors, got {body}"
    return body


def messages(body: dict) -> list[str]:
    return [error["message"] for error in body["errors"]]


PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String,
           $filter: CustomerFilterInput, $orderBy: CustomerOrderInput) {
  customers(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name monthlyIncome riskLevel status } }
  }
}
"""

COUNT = """
query Count($filter: CustomerFilterInput) { customers(first: 1, filter: $filter) { totalCount } }
"""

CUSTOMER = """
query One($id: ID!) {
  customer(id: $id) {
    __typename id kind name regionCode regionName monthlyIncome riskLevel status
    owner { id displayName } createdAt updatedAt
  }
}
"""

CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on Customer { id name kind regionCode regionName monthlyIncome riskLevel status createdAt updatedAt }
    ... on InputError { message fields { field code message } }
    ... on PermissionError { message permission }
  }
}
"""

UPDATE = """
mutation Update($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) {
    __typename
    ... on Customer { id name kind regionCode monthlyIncome riskLevel status updatedAt }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { message id }
    ... on PermissionError { message permission }
  }
}
"""


async def page(client, token, **variables) -> dict:
    return (await ok(client, token, PAGE, variables))["customers"]


async def count(client, token, filter: dict | None = None) -> int:
    return (await ok(client, token, COUNT, {"filter": filter}))["customers"]["totalCount"]


async def create(client, token, **fields) -> dict:
    data = await ok(client, token, CREATE, {"input": {"kind": "INDIVIDUAL", **fields}})
    return data["createCustomer"]


async def read(client, token, customer_id: str) -> dict | None:
    return (await ok(client, token, CUSTOMER, {"id": customer_id}))["customer"]


# A fixed id nobody has: parameters must be the same in every pytest-xdist worker.
UNKNOWN_ID = "6f1c8a52-3b0e-4d7a-9c61-2e4f5a7b8c90"


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def cursor_of(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# --- a tenant of known customers for ordering, pagination and filters ---

# (name, monthly income, risk level, status), in three transactions: within one transaction
# every row gets the same created_at, so each ordering field has ties broken by id alone.
# Names are lowercase ASCII so any collation orders them like Python does.
BATCHES: list[list[tuple[str, str | None, str, str]]] = [
    [
        ("same", "5000.00", "low", "prospect"),
        ("same", "5000.00", "medium", "active"),
        ("same", None, "high", "active"),
        ("alpha", None, "low", "prospect"),
        ("zulu", "12000.50", "low", "settled"),
    ],
    [
        ("same", "5000.00", "low", "prospect"),
        ("mike", "5000.00", "high", "closed"),
        ("mike", None, "low", "prospect"),
        ("bravo", "0.00", "medium", "active"),
    ],
    [
        ("mike", "7000.00", "low", "prospect"),
        ("same", "12000.50", "medium", "prospect"),
        ("alpha", "5000.00", "low", "active"),
    ],
]
TOTAL = sum(len(batch) for batch in BATCHES)
FIELDS = ("CREATED_AT", "NAME", "MONTHLY_INCOME")
DIRECTIONS = ("ASC", "DESC")


@dataclass(frozen=True)
class Row:
    id: uuid.UUID
    name: str
    monthly_income: Decimal | None
    risk_level: str
    status: str
    created_at: datetime

    def key(self, field: str) -> tuple[Any, uuid.UUID]:
        if field == "CREATED_AT":
            return (self.created_at, self.id)
        if field == "NAME":
            return (self.name, self.id)
        # NULL incomes sort as the lowest amounts.
        return (Decimal(-1) if self.monthly_income is None else self.monthly_income, self.id)


@dataclass(frozen=True)
class Dataset:
    token: str
    rows: list[Row]

    def ordered(self, field: str, direction: str, **where: str) -> list[str]:
        rows = [r for r in self.rows if all(getattr(r, k) == v for k, v in where.items())]
        rows.sort(key=lambda r: r.key(field), reverse=direction == "DESC")
        return [str(r.id) for r in rows]


async def _populate(db, lifecycle, prefix: str, batches: list[list[tuple[str, str | None, str, str]]]):
    tenant = await make_tenant(lifecycle, prefix)
    principal = await principal_of(db, tenant.tenant, tenant.admin_email)
    for batch in batches:
        async with tenant_session(db, tenant.tenant) as session:
            service = CustomerService(session, principal)
            for name, income, risk, status in batch:
                await service.create_customer(
                    {
                        "kind": "individual",
                        "name": name,
                        "monthly_income": income,
                        "risk_level": risk,
                        "status": status,
                    }
                )
    async with tenant_session(db, tenant.tenant) as session:
        rows = [
            Row(c.id, c.name, c.monthly_income, c.risk_level, c.status, c.created_at)
            for c in (await session.scalars(select(Customer))).all()
        ]
    return tenant, rows, await api_token_for(db, tenant.tenant, tenant.admin_email)


@pytest.fixture(scope="module")
async def paging(db, lifecycle) -> Dataset:
    _, rows, token = await _populate(db, lifecycle, "paging", BATCHES)
    assert len(rows) == TOTAL
    # The data set really has the ties it is meant to have.
    assert len({r.created_at for r in rows}) == len(BATCHES)
    assert sum(r.name == "same" for r in rows) == 5
    assert sum(r.monthly_income is None for r in rows) == 3
    return Dataset(token, rows)


SEARCH_NAMES = [
    "100% Tea",
    "1000 Tea",
    "a_b Trading",
    "axb Trading",
    "AXB Holdings",
    "back\\slash Co",
    "张三丰",
    "张三",
    "李四",
]


@pytest.fixture(scope="module")
async def searching(db, lifecycle) -> Dataset:
    _, rows, token = await _populate(
        db, lifecycle, "search", [[(n, None, "low", "prospect") for n in SEARCH_NAMES]]
    )
    return Dataset(token, rows)


# --- ordering and pagination ---


@pytest.mark.parametrize("size", [1, 5, TOTAL])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("field", FIELDS)
async def test_walking_forward_visits_every_customer_once_in_order(client, paging, field, direction, size):
    expected = paging.ordered(field, direction)
    order = {"field": field, "direction": direction}
    seen: list[str] = []
    after = None
    for number in range(1, TOTAL + 2):
        connection = await page(client, paging.token, first=size, after=after, orderBy=order)
        ids = [edge["node"]["id"] for edge in connection["edges"]]
        info = connection["pageInfo"]
        assert connection["totalCount"] == TOTAL
        assert ids, f"page {number} is empty"
        assert len(ids) == min(size, TOTAL - len(seen))
        assert info["startCursor"] == connection["edges"][0]["cursor"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        assert info["hasPreviousPage"] is (number > 1)
        seen += ids
        assert info["hasNextPage"] is (len(seen) < TOTAL)
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert number == math.ceil(TOTAL / size)
    assert len(seen) == len(set(seen)) == TOTAL
    assert seen == expected


@pytest.mark.parametrize("size", [1, 5, TOTAL])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("field", FIELDS)
async def test_walking_backward_visits_every_customer_once_in_order(client, paging, field, direction, size):
    expected = paging.ordered(field, direction)
    order = {"field": field, "direction": direction}
    pages: list[list[str]] = []
    before = None
    for number in range(1, TOTAL + 2):
        connection = await page(client, paging.token, last=size, before=before, orderBy=order)
        ids = [edge["node"]["id"] for edge in connection["edges"]]
        info = connection["pageInfo"]
        assert connection["totalCount"] == TOTAL
        assert len(ids) == min(size, TOTAL - sum(map(len, pages)))
        assert info["startCursor"] == connection["edges"][0]["cursor"]
        assert info["hasNextPage"] is (number > 1)
        pages.insert(0, ids)
        assert info["hasPreviousPage"] is (sum(map(len, pages)) < TOTAL)
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    assert number == math.ceil(TOTAL / size)
    seen = [customer_id for ids in pages for customer_id in ids]
    assert len(seen) == len(set(seen)) == TOTAL
    assert seen == expected


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("field", FIELDS)
async def test_pages_either_side_of_a_cursor_in_the_middle(client, paging, field, direction):
    expected = paging.ordered(field, direction)
    order = {"field": field, "direction": direction}
    everything = await page(client, paging.token, first=TOTAL, orderBy=order)
    cursors = {edge["node"]["id"]: edge["cursor"] for edge in everything["edges"]}
    middle = cursors[expected[6]]

    after = await page(client, paging.token, first=3, after=middle, orderBy=order)
    assert [e["node"]["id"] for e in after["edges"]] == expected[7:10]
    assert after["pageInfo"]["hasNextPage"] is True
    assert after["pageInfo"]["hasPreviousPage"] is True

    before = await page(client, paging.token, last=3, before=middle, orderBy=order)
    assert [e["node"]["id"] for e in before["edges"]] == expected[3:6]
    assert before["pageInfo"]["hasPreviousPage"] is True
    assert before["pageInfo"]["hasNextPage"] is True


async def test_the_default_order_is_newest_first(client, paging):
    connection = await page(client, paging.token, first=TOTAL)
    assert [e["node"]["id"] for e in connection["edges"]] == paging.ordered("CREATED_AT", "DESC")


async def test_a_page_beyond_the_last_customer_is_empty(client, paging):
    order = {"field": "NAME", "direction": "ASC"}
    last = (await page(client, paging.token, last=1, orderBy=order))["pageInfo"]["endCursor"]
    beyond = await page(client, paging.token, first=5, after=last, orderBy=order)
    assert beyond["edges"] == []
    assert beyond["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }
    assert beyond["totalCount"] == TOTAL


# --- filters ---


@pytest.mark.parametrize(
    ("filter", "where"),
    [
        ({"riskLevel": "LOW"}, {"risk_level": "low"}),
        ({"riskLevel": "MEDIUM"}, {"risk_level": "medium"}),
        ({"riskLevel": "HIGH"}, {"risk_level": "high"}),
        ({"status": "PROSPECT"}, {"status": "prospect"}),
        ({"status": "ACTIVE"}, {"status": "active"}),
        ({"status": "SETTLED"}, {"status": "settled"}),
        ({"status": "CLOSED"}, {"status": "closed"}),
        ({"riskLevel": "LOW", "status": "ACTIVE"}, {"risk_level": "low", "status": "active"}),
        ({"riskLevel": "HIGH", "status": "SETTLED"}, {"risk_level": "high", "status": "settled"}),
        ({"search": "SAME", "riskLevel": "MEDIUM"}, {"name": "same", "risk_level": "medium"}),
    ],
)
async def test_filter_by_risk_level_and_status(client, paging, filter, where):
    expected = paging.ordered("NAME", "ASC", **where)
    connection = await page(
        client, paging.token, first=100, filter=filter, orderBy={"field": "NAME", "direction": "ASC"}
    )
    assert [e["node"]["id"] for e in connection["edges"]] == expected
    assert connection["totalCount"] == len(expected)


async def test_a_filtered_walk_counts_and_visits_only_the_matches(client, paging):
    expected = paging.ordered("MONTHLY_INCOME", "DESC", risk_level="low")
    assert 3 < len(expected) < TOTAL
    order = {"field": "MONTHLY_INCOME", "direction": "DESC"}
    seen: list[str] = []
    after = None
    for _ in range(TOTAL):
        connection = await page(
            client, paging.token, first=2, after=after, filter={"riskLevel": "LOW"}, orderBy=order
        )
        assert connection["totalCount"] == len(expected)
        seen += [e["node"]["id"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected


@pytest.mark.parametrize(
    ("search", "matches"),
    [
        ("%", ["100% Tea"]),
        ("0%", ["100% Tea"]),
        ("_", ["a_b Trading"]),
        ("a_b", ["a_b Trading"]),
        ("\\", ["back\\slash Co"]),
        ("axb", ["AXB Holdings", "axb Trading"]),
        ("tea", ["100% Tea", "1000 Tea"]),
        ("  100%   tea ", ["100% Tea"]),
        ("张三", ["张三", "张三丰"]),
        ("三丰", ["张三丰"]),
        ("nobody", []),
    ],
)
async def test_search_matches_part_of_the_name_literally(client, searching, search, matches):
    connection = await page(client, searching.token, first=100, filter={"search": search})
    assert sorted(e["node"]["name"] for e in connection["edges"]) == sorted(matches)
    assert connection["totalCount"] == len(matches)


async def test_a_blank_search_matches_everyone(client, searching):
    assert await count(client, searching.token, {"search": "   "}) == len(SEARCH_NAMES)


# --- refused arguments ---


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: 101", "first must be between 1 and 100"),
        ("first: 0", "first must be between 1 and 100"),
        ("first: -1", "first must be between 1 and 100"),
        ("last: 101", "last must be between 1 and 100"),
        ("last: 0", "last must be between 1 and 100"),
    ],
)
async def test_page_size_out_of_range_is_a_readable_error(client, token_a, arguments, message):
    body = await refused(client, token_a, f"{{ customers({arguments}) {{ totalCount }} }}")
    assert messages(body) == [message]
    assert body["errors"][0]["path"] == ["customers"]


async def test_page_size_at_the_limits_is_accepted(client, token_a):
    await ok(
        client, token_a, "{ a: customers(first: 1) { totalCount } b: customers(last: 100) { totalCount } }"
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "!!!!",
        "e30",  # {}
        cursor_of(["created_at"]),
        cursor_of(["created_at", "not-a-uuid"]),
        cursor_of(["created_at", 5]),
        cursor_of({"field": "created_at"}),
        base64.urlsafe_b64encode(b"\xcf\x80\xff").decode(),
        cursor_of(["name", UNKNOWN_ID]),  # issued for another ordering
        "游标",
    ],
)
@pytest.mark.parametrize("argument", ["after", "before"])
async def test_a_malformed_cursor_is_a_readable_error(client, token_a, argument, cursor):
    body = await refused(
        client, token_a, f"query($c: String) {{ customers({argument}: $c) {{ totalCount }} }}", {"c": cursor}
    )
    assert messages(body) == ["invalid cursor"]
    assert body["data"] is None


async def test_a_cursor_of_another_ordering_is_refused(client, paging):
    by_name = await page(client, paging.token, first=2, orderBy={"field": "NAME", "direction": "ASC"})
    body = await refused(
        client,
        paging.token,
        PAGE,
        {"first": 2, "after": by_name["pageInfo"]["endCursor"], "orderBy": {"field": "CREATED_AT"}},
    )
    assert messages(body) == ["invalid cursor"]


async def test_a_deeply_nested_cursor_is_a_readable_error(client, token_a):
    cursor = base64.urlsafe_b64encode(("[" * 100_000 + "]" * 100_000).encode()).decode()
    body = await refused(
        client, token_a, "query($c: String) { customers(after: $c) { totalCount } }", {"c": cursor}
    )
    assert messages(body) == ["invalid cursor"]


# --- totalCount ---


async def test_total_count_under_an_alias(client, paging):
    data = await ok(client, paging.token, "{ customers(first: 1) { n: totalCount } }")
    assert data["customers"]["n"] == TOTAL


@pytest.mark.parametrize(
    "query",
    [
        "{ customers(first: 1) { ...Counted } } fragment Counted on CustomerConnection { totalCount }",
        "{ customers(first: 1) { ... on CustomerConnection { totalCount } } }",
    ],
    ids=["named-fragment", "inline-fragment"],
)
async def test_total_count_selected_through_a_fragment(client, paging, query):
    data = await ok(client, paging.token, query)
    assert data["customers"]["totalCount"] == TOTAL


# --- customer(id) ---


async def test_customer_by_id_reads_every_field(client, token_a, tenant_a):
    name = unique("王五")
    created = await create(
        client,
        token_a,
        name=name,
        regionCode="440100",
        monthlyIncome="8800.5",
        riskLevel="HIGH",
        status="ACTIVE",
    )
    customer = await read(client, token_a, created["id"])
    assert customer is not None
    assert {k: customer[k] for k in ("id", "name", "kind", "regionCode", "regionName", "monthlyIncome")} == {
        "id": created["id"],
        "name": name,
        "kind": "INDIVIDUAL",
        "regionCode": "440100",
        "regionName": "广州市",
        "monthlyIncome": "8800.50",
    }
    assert (customer["riskLevel"], customer["status"]) == ("HIGH", "ACTIVE")
    assert customer["owner"]["displayName"]


@pytest.mark.parametrize("customer_id", ["not-a-uuid", "", "123", "\u0000", UNKNOWN_ID])
async def test_customer_by_a_malformed_or_unknown_id_is_null(client, token_a, customer_id):
    assert await read(client, token_a, customer_id) is None


async def test_another_tenants_customer_is_null(client, token_a, token_b):
    created = await create(client, token_a, name=unique("tenant a only"))
    assert await read(client, token_b, created["id"]) is None
    assert await read(client, token_a, created["id"]) is not None


# --- createCustomer ---


@pytest.mark.parametrize(
    ("fields", "refused_fields"),
    [
        ({"name": "   "}, [("name", "required")]),
        ({"name": "x", "monthlyIncome": "-1"}, [("monthlyIncome", "invalid_amount")]),
        ({"name": "x", "monthlyIncome": "1.005"}, [("monthlyIncome", "invalid_amount")]),
        ({"name": "x", "regionCode": "999999"}, [("regionCode", "unknown_region")]),
        (
            {"name": "", "regionCode": "999999", "monthlyIncome": "-0.001"},
            [("monthlyIncome", "invalid_amount"), ("name", "required"), ("regionCode", "unknown_region")],
        ),
    ],
    ids=["blank-name", "negative-income", "three-decimals", "unknown-region", "all-at-once"],
)
async def test_create_refuses_bad_input_with_camel_case_fields_and_writes_nothing(
    client, token_a, fields, refused_fields
):
    before = await count(client, token_a)
    result = await create(client, token_a, **fields)
    assert result["__typename"] == "InputError", result
    assert sorted((f["field"], f["code"]) for f in result["fields"]) == refused_fields
    assert all(f["message"] for f in result["fields"])
    assert "nothing was saved" in result["message"]
    assert await count(client, token_a) == before


@pytest.mark.parametrize(
    ("given", "shown"),
    [("12345.60", "12345.60"), ("12345.6", "12345.60"), ("0", "0.00"), ("7", "7.00")],
)
async def test_money_round_trips_as_a_string_with_two_decimals(client, token_a, given, shown):
    created = await create(client, token_a, name=unique("money"), monthlyIncome=given)
    assert created["__typename"] == "Customer", created
    assert created["monthlyIncome"] == shown
    assert (await read(client, token_a, created["id"]))["monthlyIncome"] == shown
    listed = await page(client, token_a, first=1, filter={"search": created["name"]})
    assert listed["edges"][0]["node"]["monthlyIncome"] == shown


async def test_negative_zero_income_is_not_shown_as_minus_zero(client, token_a):
    created = await create(client, token_a, name=unique("minus zero"), monthlyIncome="-0")
    if created["__typename"] == "Customer":
        assert created["monthlyIncome"] == (await read(client, token_a, created["id"]))["monthlyIncome"]
    else:
        assert created["__typename"] == "InputError"


async def test_create_returns_the_saved_customer(client, token_a, tenant_a):
    before = await count(client, token_a)
    name = unique("赵六")
    created = await create(client, token_a, name=f"  {name}  ", kind="ENTERPRISE")
    assert created["__typename"] == "Customer"
    assert created["name"] == name  # trimmed
    assert (created["kind"], created["riskLevel"], created["status"]) == ("ENTERPRISE", "LOW", "PROSPECT")
    assert created["monthlyIncome"] is None and created["regionCode"] is None
    assert await count(client, token_a) == before + 1


# --- updateCustomer ---


async def test_update_changes_only_the_given_fields(client, token_a):
    name = unique("update")
    created = await create(
        client, token_a, name=name, regionCode="110000", monthlyIncome="100.00", riskLevel="MEDIUM"
    )
    data = await ok(client, token_a, UPDATE, {"id": created["id"], "input": {"status": "ACTIVE"}})
    updated = data["updateCustomer"]
    assert updated["__typename"] == "Customer"
    assert updated["status"] == "ACTIVE"
    assert updated["updatedAt"] != created["updatedAt"]
    stored = await read(client, token_a, created["id"])
    assert (
        stored["name"],
        stored["kind"],
        stored["regionCode"],
        stored["monthlyIncome"],
        stored["riskLevel"],
    ) == (
        name,
        "INDIVIDUAL",
        "110000",
        "100.00",
        "MEDIUM",
    )
    assert stored["status"] == "ACTIVE"


@pytest.mark.parametrize("how", ["variables", "literal"])
async def test_explicit_null_clears_monthly_income(client, token_a, how):
    created = await create(
        client, token_a, name=unique("clear income"), monthlyIncome="100.00", regionCode="110000"
    )
    if how == "variables":
        data = await ok(client, token_a, UPDATE, {"id": created["id"], "input": {"monthlyIncome": None}})
        result = data["updateCustomer"]
    else:
        query = (
            f'mutation {{ updateCustomer(id: "{created["id"]}", input: {{monthlyIncome: null}})'
            " { __typename } }"
        )
        result = (await ok(client, token_a, query))["updateCustomer"]
    assert result["__typename"] == "Customer"
    stored = await read(client, token_a, created["id"])
    assert stored["monthlyIncome"] is None
    assert stored["regionCode"] == "110000"  # not given: kept


async def test_null_for_the_name_is_refused_and_changes_nothing(client, token_a):
    name = unique("keep name")
    created = await create(client, token_a, name=name, monthlyIncome="1.00")
    data = await ok(
        client, token_a, UPDATE, {"id": created["id"], "input": {"name": None, "monthlyIncome": "2.00"}}
    )
    result = data["updateCustomer"]
    assert result["__typename"] == "InputError"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [("name", "required")]
    stored = await read(client, token_a, created["id"])
    assert (stored["name"], stored["monthlyIncome"]) == (name, "1.00")


async def test_update_refuses_bad_input_with_camel_case_fields(client, token_a):
    created = await create(client, token_a, name=unique("bad update"))
    data = await ok(
        client,
        token_a,
        UPDATE,
        {"id": created["id"], "input": {"monthlyIncome": "1.234", "regionCode": "000000"}},
    )
    result = data["updateCustomer"]
    assert result["__typename"] == "InputError"
    assert sorted((f["field"], f["code"]) for f in result["fields"]) == [
        ("monthlyIncome", "invalid_amount"),
        ("regionCode", "unknown_region"),
    ]
    stored = await read(client, token_a, created["id"])
    assert (stored["monthlyIncome"], stored["regionCode"]) == (None, None)


@pytest.mark.parametrize("customer_id", ["not-a-uuid", UNKNOWN_ID])
async def test_update_of_an_unknown_customer_is_not_found(client, token_a, customer_id):
    data = await ok(client, token_a, UPDATE, {"id": customer_id, "input": {"name": "x"}})
    assert data["updateCustomer"] == {
        "__typename": "NotFoundError",
        "message": "customer not found",
        "id": customer_id,
    }


async def test_update_of_another_tenants_customer_is_not_found(client, token_a, token_b):
    name = unique("not yours")
    created = await create(client, token_a, name=name)
    data = await ok(client, token_b, UPDATE, {"id": created["id"], "input": {"name": "stolen"}})
    assert data["updateCustomer"]["__typename"] == "NotFoundError"
    assert (await read(client, token_a, created["id"]))["name"] == name


# --- permissions ---


@pytest.fixture
async def viewer_token(db, tenant_a) -> str:
    email = await add_user(db, tenant_a.tenant, "viewer")
    return await api_token_for(db, tenant_a.tenant, email)


async def test_a_viewer_may_read_but_not_write(client, token_a, viewer_token):
    existing = await create(client, token_a, name=unique("viewed"))
    before = await count(client, token_a)

    created = await create(client, viewer_token, name=unique("by viewer"))
    assert created == {
        "__typename": "PermissionError",
        "message": "missing permission customers.write",
        "permission": "customers.write",
    }
    data = await ok(client, viewer_token, UPDATE, {"id": existing["id"], "input": {"name": "renamed"}})
    assert data["updateCustomer"]["__typename"] == "PermissionError"
    assert data["updateCustomer"]["permission"] == "customers.write"

    assert await count(client, token_a) == before
    assert (await read(client, viewer_token, existing["id"]))["name"] == existing["name"]
    assert await count(client, viewer_token) == before
    viewer = (await ok(client, viewer_token, "{ viewer { role permissions } }"))["viewer"]
    assert viewer == {"role": "viewer", "permissions": ["customers.read"]}


# --- authentication ---


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer garbage",
        "Bearer tcrm_0123456789abcdef_" + "x" * 43,  # well formed, no such tenant
        "Basic dXNlcjpwYXNz",
    ],
    ids=["missing", "empty", "no-token", "garbage", "unknown-tenant", "basic"],
)
async def test_without_a_valid_token_the_answer_is_401(client, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/graphql", json={"query": "{ viewer { email } }"}, headers=headers)
    assert response.status_code == 401
    assert response.headers.get("www-authenticate") == "Bearer"
    assert "data" not in response.json()


async def test_a_token_with_a_wrong_secret_or_scheme_is_401(client, token_a):
    wrong_secret = token_a[:-4] + ("AAAA" if not token_a.endswith("AAAA") else "BBBB")
    for authorization in (f"Bearer {wrong_secret}", f"Token {token_a}", token_a):
        response = await client.post(
            "/graphql", json={"query": "{ viewer { email } }"}, headers={"Authorization": authorization}
        )
        assert response.status_code == 401, authorization
    response = await client.post(
        "/graphql", json={"query": "{ viewer { email } }"}, headers={"Authorization": f"bearer {token_a}"}
    )
    assert response.status_code == 200


async def test_a_revoked_token_is_401(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    token = await api_token_for(db, tenant_a.tenant, email)
    assert (await ok(client, token, "{ viewer { email } }"))["viewer"]["email"] == email
    async with tenant_session(db, tenant_a.tenant) as session:
        user = await find_user_by_email(session, email)
        await revoke_api_tokens_named(session, user, "test")
    response = await post(client, token, "{ viewer { email } }")
    assert response.status_code == 401


# --- limits ---


async def test_too_many_aliases_are_refused(client, token_a):
    allowed = "{ " + " ".join(f"a{i}: __typename" for i in range(MAX_ALIASES)) + " }"
    await ok(client, token_a, allowed)
    abusive = (
        "{ "
        + " ".join(f"a{i}: customers(first: 100) {{ totalCount }}" for i in range(MAX_ALIASES + 1))
        + " }"
    )
    body = await refused(client, token_a, abusive)
    assert body["data"] is None
    assert messages(body) == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]


async def test_too_deep_a_query_is_refused(client, token_a):
    nested = "".join(f"f{i} {{ " for i in range(MAX_DEPTH + 2)) + "x" + " }" * (MAX_DEPTH + 2)
    body = await refused(
        client, token_a, f"{{ customers {{ edges {{ node {{ owner {{ {nested} }} }} }} }} }}"
    )
    assert body["data"] is None
    assert f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}" in messages(body)


async def test_too_many_tokens_are_refused(client, token_a):
    body = await refused(client, token_a, "{ " + "__typename " * (MAX_TOKENS + 1) + "}")
    assert body["data"] is None
    assert any(f"more than {MAX_TOKENS} tokens" in m for m in messages(body))


async def test_a_fragment_cycle_is_refused(client, token_a):
    body = await refused(client, token_a, "query { ...A } fragment A on Query { viewer { email } ...A }")
    assert body["data"] is None
    assert messages(body) == ["Cannot spread fragment 'A' within itself."]


# --- masking and rolling back ---


@pytest.fixture(scope="module")
async def faulty(lifecycle, db):
    """A tenant whose database fails on purpose: a trigger refuses names starting "boom", and
    a view of customers the tenant role may not read. Real database errors, no mocks."""
    fixture = await make_tenant(lifecycle, "faulty")
    schema = fixture.tenant.schema
    async with db.admin_engine.begin() as conn:
        await conn.execute(
            text(
                f'CREATE FUNCTION "{schema}".refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$'
                " BEGIN IF NEW.name LIKE 'boom%' THEN RAISE EXCEPTION 'injected failure'; END IF;"
                " RETURN NEW; END $$"
            )
        )
        await conn.execute(
            text(
                f'CREATE TRIGGER refuse_boom BEFORE INSERT ON "{schema}".customers'
                f' FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_boom()'
            )
        )
    token = await api_token_for(db, fixture.tenant, fixture.admin_email)
    return fixture, token


async def test_an_unexpected_server_error_is_masked(client, db, faulty, caplog):
    fixture, token = faulty
    secret_name = unique("王秘密")
    async with db.admin_engine.begin() as conn:
        await conn.execute(
            text(f'REVOKE SELECT ON "{fixture.tenant.schema}".customers FROM "{fixture.tenant.schema}"')
        )
    try:
        with caplog.at_level("DEBUG"):
            response = await post(client, token, COUNT, {"filter": {"search": secret_name}})
    finally:
        async with db.admin_engine.begin() as conn:
            await conn.execute(
                text(f'GRANT SELECT ON "{fixture.tenant.schema}".customers TO "{fixture.tenant.schema}"')
            )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert messages(body) == ["Unexpected error."]
    assert body["errors"][0]["path"] == ["customers"]
    lowered = response.text.lower()
    for leak in ("asyncpg", "sqlalchemy", "permission", fixture.tenant.schema, "traceback", "select"):
        assert leak not in lowered
    # The log names the failure but holds neither the query text nor the customer's name.
    assert "graphql error ProgrammingError" in caplog.text
    assert secret_name not in caplog.text and "search" not in caplog.text


async def test_a_bad_variable_value_is_explained_not_masked(client, token_a):
    body = await refused(
        client,
        token_a,
        "mutation ($input: CreateCustomerInput!) { createCustomer(input: $input) { __typename } }",
        {"input": {"kind": "PERSON", "name": "x"}},
    )
    assert "PERSON" in messages(body)[0] and "CustomerKind" in messages(body)[0]


async def test_control_characters_are_refused_as_input_and_ignored_in_search(client, token_a):
    body = await ok(
        client,
        token_a,
        """mutation { createCustomer(input: {kind: INDIVIDUAL, name: "x\\u0000y"}) {
        __typename ... on InputError { fields { field code } } } }""",
    )
    assert body["createCustomer"] == {
        "__typename": "InputError",
        "fields": [{"field": "name", "code": "invalid_characters"}],
    }
    assert await count(client, token_a, {"search": "\u0000"}) == await count(client, token_a)


async def test_a_document_failing_validation_writes_nothing(client, token_a):
    name = unique("never saved")
    before = await count(client, token_a)
    document = f"""mutation {{
      a: createCustomer(input: {{kind: INDIVIDUAL, name: "{name}"}}) {{ __typename }}
      b: createCustomer(input: {{kind: INDIVIDUAL, name: "x", monthlyIncome: "abc"}}) {{ __typename }}
    }}"""
    body = await refused(client, token_a, document)
    assert body["data"] is None
    assert any("Decimal" in m for m in messages(body))
    assert await count(client, token_a) == before
    assert await count(client, token_a, {"search": name}) == 0


async def test_an_error_in_a_later_mutation_rolls_back_the_earlier_one(client, faulty):
    """The first mutation succeeds, the second fails in the database: nothing is kept."""
    _, token = faulty
    name = unique("rolled back")
    before = await count(client, token)
    document = """mutation ($ok: String!, $bad: String!) {
      a: createCustomer(input: {kind: INDIVIDUAL, name: $ok}) { __typename ... on Customer { id } }
      b: createCustomer(input: {kind: INDIVIDUAL, name: $bad}) { __typename }
    }"""
    body = await refused(client, token, document, {"ok": name, "bad": unique("boom")})
    assert messages(body) == ["Unexpected error."]
    assert body["errors"][0]["path"] == ["b"]
    assert await count(client, token, {"search": name}) == 0
    assert await count(client, token) == before


async def test_typed_errors_do_not_roll_back_the_other_mutations(client, token_a):
    """An InputError is an answer, not a failure: the sibling mutation is kept (documented)."""
    name = unique("kept")
    document = """mutation ($ok: String!) {
      a: createCustomer(input: {kind: INDIVIDUAL, name: $ok}) { __typename }
      b: createCustomer(input: {kind: INDIVIDUAL, name: " "}) { __typename }
    }"""
    data = await ok(client, token_a, document, {"ok": name})
    assert data == {"a": {"__typename": "Customer"}, "b": {"__typename": "InputError"}}
    assert await count(client, token_a, {"search": name}) == 1


# --- introspection and GraphiQL ---

INTROSPECTION = "{ __schema { types { name } } }"


async def test_introspection_works_with_the_test_settings(client, token_a, settings):
    assert settings.graphql_introspection is True
    data = await ok(client, token_a, INTROSPECTION)
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Customer", "CustomerConnection", "InputError", "Viewer"} <= names


@pytest.fixture
async def closed_client(settings, database_url, db):
    """A client of an app built with introspection (and GraphiQL) turned off."""
    from tenantcrm.app import create_app

    application = create_app(
        dataclasses.replace(settings, graphql_introspection=False), database_url, database=db
    )
    application.state.db = db  # served in the test's event loop: no lifespan runs
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as closed:
        yield closed


@pytest.mark.parametrize("query", [INTROSPECTION, '{ __type(name: "Customer") { name fields { name } } }'])
async def test_introspection_is_refused_when_disabled(closed_client, token_a, query):
    body = await refused(closed_client, token_a, query)
    assert body["data"] is None
    assert all("introspection has been disabled" in m for m in messages(body))
    # Everything else still works.
    assert (await ok(closed_client, token_a, "{ viewer { role } }"))["viewer"]["role"] == "admin"


async def test_cached_validation_refuses_again_and_is_kept_per_schema(client, closed_client, token_a):
    """Operations are parsed and validated once per process (ParserCache, ValidationCache): an
    operation refused once is refused again, and one valid for the app with introspection is
    still refused by the app without it."""
    nested = "".join(f"g{i} {{ " for i in range(MAX_DEPTH + 2)) + "x" + " }" * (MAX_DEPTH + 2)
    deep = f"{{ customers {{ edges {{ node {{ owner {{ {nested} }} }} }} }} }}"
    for _ in range(2):
        body = await refused(client, token_a, deep)
        assert f"'anonymous' exceeds maximum operation depth of {MAX_DEPTH}" in messages(body)
    query = '{ __type(name: "Loan") { name } }'
    for _ in range(2):
        assert (await ok(client, token_a, query))["__type"]["name"] == "Loan"
        body = await refused(closed_client, token_a, query)
        assert all("introspection has been disabled" in m for m in messages(body))


async def test_graphiql_is_not_served_when_disabled(closed_client, token_a):
    for headers in ({"Accept": "text/html"}, {"Accept": "text/html", **bearer(token_a)}):
        response = await closed_client.get("/graphql", headers=headers)
        assert response.status_code in (401, 404), response.status_code
        assert "graphiql" not in response.text.lower()


async def test_graphiql_is_served_when_enabled_to_a_token_holder(client, token_a):
    response = await client.get("/graphql", headers={"Accept": "text/html", **bearer(token_a)})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_is_served_to_a_browser_when_enabled(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
