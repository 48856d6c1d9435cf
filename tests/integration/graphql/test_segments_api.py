"""Segments over GraphQL: the contract query, refused filters, record scope and masking, saved
segments and their permissions, against real PostgreSQL through the app.

The tenants are this module's own; every customer of the segments under test carries the
module's tag, so counts are exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.service import find_user_by_email
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.masking import mask_phone
from tenantcrm.pii.store import cipher_source
from tenantcrm.segments.service import SegmentService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, api_token_for, make_tenant, principal_of
from tests.integration.graphql.test_lending_api import ok, post

TAG = "segapi"
PHONE = "13912345678"
# The contract, verbatim but for the variable.
CONTRACT = """
query ($filter: JSON!) {
  segmentPreview(filter: $filter) { count customers(first: 10) { edges { node { id } } } }
}
"""
PREVIEW = """
query ($filter: JSON!, $first: Int, $after: String) {
  segmentPreview(filter: $filter) {
    count
    customers(first: $first, after: $after) {
      edges { node { id name phone nationalId } }
      pageInfo { hasNextPage endCursor }
      totalCount
    }
  }
}
"""
BREAKDOWN = """
query ($filter: JSON!, $by: SegmentField!) {
  segmentPreview(filter: $filter) { count breakdown(by: $by) { key count label } }
}
"""
SAVE = """
mutation ($input: SegmentInput!) {
  saveSegment(input: $input) {
    __typename
    ... on Segment { id name shared filter count canEdit owner { id displayName } }
    ... on InputError { message fields { field code message } }
    ... on PermissionError { message permission }
  }
}
"""
SEGMENT = """
query ($id: ID!) {
  segment(id: $id) {
    id name description shared filter count
    customers(first: 10) { edges { node { id phone } } totalCount }
    breakdown(by: RISK_LEVEL) { key count }
  }
}
"""
UPDATE = """
mutation ($id: ID!, $input: UpdateSegmentInput!) {
  updateSegment(id: $id, input: $input) {
    __typename
    ... on Segment { id name shared filter }
    ... on InputError { fields { field code } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
DELETE = """
mutation ($id: ID!) {
  deleteSegment(id: $id) {
    __typename
    ... on SegmentDeleted { id }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""


def tagged(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"and": [{"field": "tags", "op": "contains", "value": TAG}, *conditions]}


@dataclass
class Book:
    tenant: Any
    emails: dict[str, str]  # admin, officer, other_officer
    tokens: dict[str, str]
    customers: dict[str, str]  # high_own, low_own (the officer's), high_other (the other officer's)
    other_tenant: Any
    other_admin_email: str
    other_segment_id: str  # a segment of the other tenant's admin


async def _customer(db, settings, tenant, principal, name: str, **fields: Any) -> str:
    cipher = cipher_source(db, master_key_ring(settings), tenant)
    async with tenant_session(db, tenant) as session:
        row = await CustomerService(session, principal, cipher).create_customer(
            {"kind": "individual", "name": name, "tags": [TAG], **fields}
        )
        return str(row.id)


@pytest.fixture(scope="module")
async def book(db, settings, lifecycle) -> Book:
    fixture = await make_tenant(lifecycle, "segapi")
    tenant = fixture.tenant
    emails = {"admin": fixture.admin_email}
    for key in ("officer", "other_officer"):
        emails[key] = await add_user(db, tenant, "loan_officer")
    officer = await principal_of(db, tenant, emails["officer"])
    other_officer = await principal_of(db, tenant, emails["other_officer"])
    customers = {
        "high_own": await _customer(
            db, settings, tenant, officer, "甲分群", risk_level="high", region_code="310000", phone=PHONE
        ),
        "low_own": await _customer(db, settings, tenant, officer, "乙分群", risk_level="low"),
        "high_other": await _customer(db, settings, tenant, other_officer, "丙分群", risk_level="high"),
    }
    async with tenant_session(db, tenant) as session:
        await LoanService(session, officer).create_loan(
            customers["high_own"],
            {
                "product": "房抵贷",
                "amount": "100000.00",
                "annual_rate": "0.05",
                "term_months": 12,
                "method": "equal_installment",
                "start_date": date(2025, 1, 15),
            },
        )
    other = await make_tenant(lifecycle, "segapi-other")
    other_admin = await principal_of(db, other.tenant, other.admin_email)
    async with tenant_session(db, other.tenant) as session:
        segment = await SegmentService(session, other_admin).save(
            {"name": "other tenant's", "filter": {"field": "riskLevel", "op": "eq", "value": "high"}}
        )
    return Book(
        tenant=tenant,
        emails=emails,
        tokens={key: await api_token_for(db, tenant, email) for key, email in emails.items()},
        customers=customers,
        other_tenant=other.tenant,
        other_admin_email=other.admin_email,
        other_segment_id=str(segment.id),
    )


async def written(db, tenant) -> tuple[int, int]:
    """Segments and audit events of the tenant: what a refused save must leave as it was."""
    async with tenant_session(db, tenant) as session:
        segments = await session.scalar(text("SELECT count(*) FROM segments"))
        events = await session.scalar(text("SELECT count(*) FROM audit_events"))
        return int(segments or 0), int(events or 0)


# --- previewing ---


async def test_the_contract_query_counts_and_lists(client, book: Book):
    filter_ = tagged({"field": "riskLevel", "op": "eq", "value": "high"})
    data = await ok(client, book.tokens["admin"], CONTRACT, {"filter": filter_})
    preview = data["segmentPreview"]
    assert preview["count"] == 2
    ids = {edge["node"]["id"] for edge in preview["customers"]["edges"]}
    assert ids == {book.customers["high_own"], book.customers["high_other"]}


async def test_results_keep_to_the_record_scope(client, book: Book):
    everyone = await ok(client, book.tokens["admin"], PREVIEW, {"filter": tagged()})
    assert everyone["segmentPreview"]["count"] == 3
    own = (await ok(client, book.tokens["officer"], PREVIEW, {"filter": tagged()}))["segmentPreview"]
    assert own["count"] == own["customers"]["totalCount"] == 2
    assert {e["node"]["id"] for e in own["customers"]["edges"]} == {
        book.customers["high_own"],
        book.customers["low_own"],
    }
    # Naming the other officer's customer's traits finds nothing for this officer.
    high = await ok(
        client,
        book.tokens["officer"],
        PREVIEW,
        {"filter": tagged({"field": "riskLevel", "op": "eq", "value": "high"})},
    )
    assert [e["node"]["id"] for e in high["segmentPreview"]["customers"]["edges"]] == [
        book.customers["high_own"]
    ]


async def test_customers_come_masked(client, book: Book):
    body = await post(
        client,
        book.tokens["admin"],
        PREVIEW,
        {"filter": tagged({"field": "regionCode", "op": "eq", "value": "310000"})},
    )
    (edge,) = body["data"]["segmentPreview"]["customers"]["edges"]
    assert edge["node"]["phone"] == mask_phone(PHONE) != PHONE
    assert PHONE not in str(body)


async def test_pages_follow_the_cursor(client, book: Book):
    token = book.tokens["admin"]
    first = (await ok(client, token, PREVIEW, {"filter": tagged(), "first": 2}))["segmentPreview"]
    assert first["customers"]["pageInfo"]["hasNextPage"] is True
    after = first["customers"]["pageInfo"]["endCursor"]
    rest = (await ok(client, token, PREVIEW, {"filter": tagged(), "first": 2, "after": after}))[
        "segmentPreview"
    ]
    assert rest["customers"]["pageInfo"]["hasNextPage"] is False
    seen = [e["node"]["id"] for page in (first, rest) for e in page["customers"]["edges"]]
    assert sorted(seen) == sorted(book.customers.values())


async def test_breakdown_groups_the_matching_customers(client, book: Book):
    token = book.tokens["admin"]
    by_risk = await ok(client, token, BREAKDOWN, {"filter": tagged(), "by": "RISK_LEVEL"})
    assert [(s["key"], s["count"]) for s in by_risk["segmentPreview"]["breakdown"]] == [
        ("high", 2),
        ("low", 1),
    ]
    by_owner = await ok(client, token, BREAKDOWN, {"filter": tagged(), "by": "OWNER_ID"})
    slices = by_owner["segmentPreview"]["breakdown"]
    assert sorted(s["count"] for s in slices) == [1, 2]
    assert all(s["label"] for s in slices)  # the officers' names
    own = await ok(client, book.tokens["officer"], BREAKDOWN, {"filter": tagged(), "by": "RISK_LEVEL"})
    assert [(s["key"], s["count"]) for s in own["segmentPreview"]["breakdown"]] == [("high", 1), ("low", 1)]


async def test_text_values_are_bound_never_spliced(client, book: Book):
    token = book.tokens["admin"]

    async def count(condition: dict[str, Any]) -> int:
        return (await ok(client, token, CONTRACT, {"filter": tagged(condition)}))["segmentPreview"]["count"]

    assert await count({"field": "product", "op": "contains", "value": "房抵"}) == 1
    assert await count({"field": "product", "op": "eq", "value": "房抵贷' OR '1'='1"}) == 0
    assert await count({"field": "product", "op": "contains", "value": "%"}) == 0
    assert await count({"field": "product", "op": "contains", "value": "_"}) == 0
    assert await count({"field": "tags", "op": "contains", "value": "x'] OR true --"}) == 0
    # Still all there.
    assert (await ok(client, token, CONTRACT, {"filter": tagged()}))["segmentPreview"]["count"] == 3


REFUSED = [
    pytest.param({"field": "nationalId", "op": "eq", "value": "x"}, "unknown_field", "$", id="pii-field"),
    pytest.param(
        tagged({"field": "risk_level = 'high' OR 1=1 --", "op": "eq", "value": "x"}),
        "unknown_field",
        "and[1]",
        id="sql-as-field",
    ),
    pytest.param(
        {"field": "riskLevel", "op": "= 'high' OR 1=1; --", "value": "high"},
        "unknown_operator",
        "$",
        id="sql-as-operator",
    ),
    pytest.param(
        {"or": [{"field": "riskLevel", "op": "eq", "value": "high' OR '1'='1"}]},
        "invalid_choice",
        "or[0]",
        id="sql-as-choice",
    ),
    pytest.param(
        {"not": {"field": "creditScore", "op": "lt", "value": "600); DROP TABLE customers; --"}},
        "invalid_int",
        "not",
        id="sql-as-number",
    ),
    pytest.param({"field": "tags", "op": "gt", "value": "VIP"}, "operator_not_allowed", "$", id="wrong-op"),
    pytest.param({"field": "riskLevel", "op": "eq"}, "missing_value", "$", id="no-value"),
    pytest.param({"xor": []}, "invalid_shape", "$", id="unknown-group"),
    pytest.param([], "invalid_shape", "$", id="a-list"),
    pytest.param("DROP TABLE customers", "invalid_json", "$", id="a-string"),
    pytest.param(
        {"not": {"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}}, "too_deep", None, id="deep"
    ),
]


@pytest.mark.parametrize(("filter_", "reason", "path"), REFUSED)
async def test_invalid_filters_are_refused_clearly_with_no_data(client, book: Book, filter_, reason, path):
    body = await post(client, book.tokens["admin"], CONTRACT, {"filter": filter_})
    assert body["data"] in (None, {"segmentPreview": None})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_FILTER"
    assert error["extensions"]["reason"] == reason
    if path is not None:
        assert error["extensions"]["path"] == path
        assert error["message"].startswith(f"Invalid filter: {path}:")
    assert error["path"] == ["segmentPreview"]


async def test_an_invalid_stored_filter_field_is_not_echoed_at_length(client, book: Book):
    name = "x" * 500
    body = await post(
        client, book.tokens["admin"], CONTRACT, {"filter": {"field": name, "op": "eq", "value": 1}}
    )
    (error,) = body["errors"]
    assert error["extensions"]["reason"] == "unknown_field"
    assert name not in error["message"] and len(error["message"]) < 150


# --- saved segments ---


async def test_a_saved_segment_counts_lists_and_breaks_down(client, book: Book, db):
    token = book.tokens["admin"]
    saved = (
        await ok(client, token, SAVE, {"input": {"name": "标签客户", "shared": True, "filter": tagged()}})
    )["saveSegment"]
    assert saved["__typename"] == "Segment" and saved["canEdit"] is True
    assert (saved["name"], saved["shared"], saved["count"]) == ("标签客户", True, 3)
    assert saved["filter"] == tagged()
    segment = (await ok(client, token, SEGMENT, {"id": saved["id"]}))["segment"]
    assert segment["count"] == segment["customers"]["totalCount"] == 3
    assert {e["node"]["phone"] for e in segment["customers"]["edges"]} == {mask_phone(PHONE), None}
    assert [(s["key"], s["count"]) for s in segment["breakdown"]] == [("high", 2), ("low", 1)]
    listed = (await ok(client, token, "{ segments { id owner { displayName } count } }"))["segments"]
    assert {"id": saved["id"], "owner": {"displayName": saved["owner"]["displayName"]}, "count": 3} in listed

    narrowed = tagged({"field": "riskLevel", "op": "eq", "value": "low"})
    updated = (await ok(client, token, UPDATE, {"id": saved["id"], "input": {"filter": narrowed}}))[
        "updateSegment"
    ]
    assert (updated["__typename"], updated["name"], updated["filter"]) == ("Segment", "标签客户", narrowed)
    assert (await ok(client, token, SEGMENT, {"id": saved["id"]}))["segment"]["count"] == 1

    deleted = (await ok(client, token, DELETE, {"id": saved["id"]}))["deleteSegment"]
    assert deleted == {"__typename": "SegmentDeleted", "id": saved["id"]}
    assert (await ok(client, token, SEGMENT, {"id": saved["id"]}))["segment"] is None


async def test_saving_needs_segments_manage(client, book: Book, db):
    before = await written(db, book.tenant)
    result = (
        await ok(client, book.tokens["officer"], SAVE, {"input": {"name": "mine", "filter": tagged()}})
    )["saveSegment"]
    assert result == {
        "__typename": "PermissionError",
        "message": "missing permission segments.manage",
        "permission": "segments.manage",
    }
    assert await written(db, book.tenant) == before


async def test_saving_an_invalid_filter_is_an_input_error(client, book: Book, db):
    before = await written(db, book.tenant)
    bad = tagged({"field": "phone", "op": "eq", "value": PHONE})
    result = (await ok(client, book.tokens["admin"], SAVE, {"input": {"name": "bad", "filter": bad}}))[
        "saveSegment"
    ]
    assert result["__typename"] == "InputError"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [("filter", "unknown_field")]
    assert PHONE not in str(result)
    assert await written(db, book.tenant) == before


async def test_another_tenants_segment_looks_missing(client, book: Book, db):
    token = book.tokens["admin"]
    assert (await ok(client, token, SEGMENT, {"id": book.other_segment_id}))["segment"] is None
    for document, variables in (
        (UPDATE, {"id": book.other_segment_id, "input": {"name": "taken over"}}),
        (DELETE, {"id": book.other_segment_id}),
    ):
        (result,) = (await ok(client, token, document, variables)).values()
        assert result == {"__typename": "NotFoundError", "id": book.other_segment_id}
    assert book.other_segment_id not in str(await ok(client, token, "{ segments { id } }"))
    other_admin = await principal_of(db, book.other_tenant, book.other_admin_email)
    async with tenant_session(db, book.other_tenant) as session:
        kept = await SegmentService(session, other_admin).get(book.other_segment_id)
        assert kept.name == "other tenant's"


async def test_a_random_or_malformed_id_is_null(client, book: Book):
    token = book.tokens["admin"]
    for missing in (str(uuid.uuid4()), "not-an-id"):
        assert (await ok(client, token, SEGMENT, {"id": missing}))["segment"] is None


async def test_someone_elses_segment_is_not_seen(client, book: Book, db):
    admin = await principal_of(db, book.tenant, book.emails["admin"])
    async with tenant_session(db, book.tenant) as session:
        segment = await SegmentService(session, admin).save({"name": "admin only", "filter": tagged()})
    # Not shared, and the officer is in no team with the admin: as missing as a random id.
    assert (await ok(client, book.tokens["officer"], SEGMENT, {"id": str(segment.id)}))["segment"] is None
    listed = await ok(client, book.tokens["officer"], "{ segments { id } }")
    assert str(segment.id) not in str(listed)
    (result,) = (await ok(client, book.tokens["admin"], SEGMENT, {"id": str(segment.id)})).values()
    assert result["count"] == 3


async def test_a_shared_segment_is_read_only_for_team_mates(client, book: Book, db):
    admin = await principal_of(db, book.tenant, book.emails["admin"])
    emails = [await add_user(db, book.tenant, "manager") for _ in range(2)]
    async with tenant_session(db, book.tenant) as session:
        service = AccessAdminService(session, admin)
        team = await service.create_team(f"segments team {uuid.uuid4().hex[:6]}")
        for email in emails:
            user = await find_user_by_email(session, email)
            await service.assign(user.id, role="manager", team_id=team.id)
    owner, mate = [await api_token_for(db, book.tenant, email) for email in emails]
    saved = (
        await ok(client, owner, SAVE, {"input": {"name": "团队共享", "shared": True, "filter": tagged()}})
    )["saveSegment"]
    listed = (await ok(client, mate, "{ segments { id canEdit owner { id } } }"))["segments"]
    assert {"id": saved["id"], "canEdit": False, "owner": {"id": saved["owner"]["id"]}} in listed
    # The team-mate's record scope (team: none of the officers' customers) applies to the count.
    assert (await ok(client, mate, SEGMENT, {"id": saved["id"]}))["segment"]["count"] == 0
    before = await written(db, book.tenant)
    for document, variables in (
        (UPDATE, {"id": saved["id"], "input": {"name": "taken over"}}),
        (DELETE, {"id": saved["id"]}),
    ):
        (result,) = (await ok(client, mate, document, variables)).values()
        assert result == {"__typename": "PermissionError", "permission": "segments.manage"}
    assert await written(db, book.tenant) == before
    assert (await ok(client, owner, SEGMENT, {"id": saved["id"]}))["segment"]["name"] == "团队共享"
