"""Retention, legal hold, erasure and access requests over GraphQL, against real PostgreSQL through
the app: the dry run changes nothing and counts what the run then does, four eyes on erasure, the
certificate, legal hold, and typed refusals that write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from tenantcrm.customers.service import CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, api_token_for, make_tenant, principal_of
from tests.integration.graphql.test_lending_api import ok

PHONE = "13987654321"
POLICIES = """
mutation ($policies: [RetentionPolicyInput!]!) {
  updateRetentionPolicies(policies: $policies) {
    __typename
    ... on RetentionPolicySet { policies { category periodDays action enabled } }
    ... on InputError { fields { field code } }
    ... on PermissionError { permission }
  }
}
"""
DRY_RUN = """
query ($asOf: Date) {
  retentionDryRun(asOf: $asOf) { dryRun categories { category action count } disabled }
}
"""
RUN = """
mutation ($asOf: Date) {
  runRetention(asOf: $asOf) {
    __typename
    ... on RetentionOutcome { dryRun runId categories { category count } }
    ... on PermissionError { permission }
  }
}
"""
REQUEST = """
mutation ($customerId: ID!) {
  requestErasure(customerId: $customerId, input: {basis: CONSENT_WITHDRAWN, requester: DATA_SUBJECT,
                                                  action: ANONYMISE}) {
    __typename
    ... on ErasureRequest { id status }
    ... on InputError { fields { field code } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
REVIEW = """
mutation ($id: ID!, $decision: ErasureDecision!) {
  reviewErasure(id: $id, input: {decision: $decision}) {
    __typename
    ... on ErasureRequest { id status }
    ... on InputError { fields { field code } }
  }
}
"""
EXECUTE = """
mutation ($id: ID!) {
  executeErasure(id: $id) {
    __typename
    ... on ErasureRequest { id status certificate }
    ... on InputError { fields { field code } }
  }
}
"""
HOLD = """
mutation ($customerId: ID!) {
  setLegalHold(customerId: $customerId, hold: true) { __typename ... on LegalHold { legalHold } }
}
"""
EXPORT = """
mutation ($customerId: ID!, $purpose: String!) {
  exportCustomerData(customerId: $customerId, purpose: $purpose) {
    __typename
    ... on AccessExport { counts sections }
    ... on InputError { fields { field code } }
    ... on PermissionError { permission }
  }
}
"""


@dataclass
class World:
    tenant: Any
    tokens: dict[str, str]  # admin, second_admin, officer
    customers: dict[str, str]  # stale_prospect, erasable, held


@pytest.fixture(scope="module")
async def world(db, settings, lifecycle) -> World:
    fixture = await make_tenant(lifecycle, "retapi")
    tenant = fixture.tenant
    emails = {
        "admin": fixture.admin_email,
        "second_admin": await add_user(db, tenant, "admin"),
        "officer": await add_user(db, tenant, "loan_officer"),
    }
    admin = await principal_of(db, tenant, fixture.admin_email)
    cipher = cipher_source(db, master_key_ring(settings), tenant)
    customers = {}
    async with tenant_session(db, tenant) as session:
        service = CustomerService(session, admin, cipher)
        for key, name in (("stale_prospect", "旧潜客"), ("erasable", "删除甲"), ("held", "保全乙")):
            row = await service.create_customer({"kind": "individual", "name": name, "phone": PHONE})
            customers[key] = str(row.id)
        # A prospect untouched since 2019: what a prospects policy of two years selects.
        await session.execute(
            text("UPDATE customers SET created_at = '2019-03-01', updated_at = '2019-03-01' WHERE id = :id"),
            {"id": customers["stale_prospect"]},
        )
    tokens = {key: await api_token_for(db, tenant, email) for key, email in emails.items()}
    return World(tenant, tokens, customers)


async def _customer_exists(db, tenant, customer_id: str) -> bool:
    async with tenant_session(db, tenant) as session:
        found = await session.execute(text("SELECT 1 FROM customers WHERE id = :id"), {"id": customer_id})
        return found.first() is not None


async def test_the_dry_run_counts_what_the_run_then_does(client, db, world):
    admin = world.tokens["admin"]
    enable = [{"category": "PROSPECTS", "periodDays": 730, "action": "DELETE", "enabled": True}]
    saved = (await ok(client, admin, POLICIES, {"policies": enable}))["updateRetentionPolicies"]
    assert saved["__typename"] == "RetentionPolicySet"

    dry = (await ok(client, admin, DRY_RUN, {"asOf": "2026-12-01"}))["retentionDryRun"]
    assert dry["dryRun"] is True
    assert {c["category"]: c["count"] for c in dry["categories"]} == {"PROSPECTS": 1}
    assert await _customer_exists(db, world.tenant, world.customers["stale_prospect"])

    run = (await ok(client, admin, RUN, {"asOf": "2026-12-01"}))["runRetention"]
    assert (run["__typename"], run["dryRun"]) == ("RetentionOutcome", False)
    assert {c["category"]: c["count"] for c in run["categories"]} == {"PROSPECTS": 1}
    assert not await _customer_exists(db, world.tenant, world.customers["stale_prospect"])
    # The other two prospects were created today: not selected.
    assert await _customer_exists(db, world.tenant, world.customers["erasable"])

    again = (await ok(client, admin, DRY_RUN, {"asOf": "2026-12-01"}))["retentionDryRun"]
    assert {c["category"]: c["count"] for c in again["categories"]} == {"PROSPECTS": 0}


async def test_a_refused_policy_writes_nothing(client, world):
    admin = world.tokens["admin"]
    bad = [
        {"category": "INTERACTIONS", "periodDays": 400, "action": "DELETE", "enabled": True},
        {"category": "SESSIONS", "periodDays": 10, "action": "ANONYMISE", "enabled": True},
    ]
    refused = (await ok(client, admin, POLICIES, {"policies": bad}))["updateRetentionPolicies"]
    assert refused["__typename"] == "InputError"
    assert {f["field"].split(".")[0] for f in refused["fields"]} == {"sessions"}
    current = await ok(client, admin, "{ retentionPolicies { category periodDays enabled } }")
    interactions = [p for p in current["retentionPolicies"] if p["category"] == "INTERACTIONS"]
    assert interactions == [{"category": "INTERACTIONS", "periodDays": 1825, "enabled": False}]


async def test_erasure_needs_a_second_person_and_leaves_a_certificate(client, db, world):
    admin, second = world.tokens["admin"], world.tokens["second_admin"]
    customer = world.customers["erasable"]
    requested = (await ok(client, admin, REQUEST, {"customerId": customer}))["requestErasure"]
    assert requested["__typename"] == "ErasureRequest" and requested["status"] == "REQUESTED"
    erasure = requested["id"]

    duplicate = (await ok(client, second, REQUEST, {"customerId": customer}))["requestErasure"]
    assert duplicate == {"__typename": "InputError", "fields": [{"field": "customerId", "code": "duplicate"}]}

    own = (await ok(client, admin, REVIEW, {"id": erasure, "decision": "APPROVE"}))["reviewErasure"]
    assert own == {"__typename": "InputError", "fields": [{"field": "decision", "code": "same_person"}]}
    too_early = (await ok(client, admin, EXECUTE, {"id": erasure}))["executeErasure"]
    assert too_early["__typename"] == "InputError"

    approved = (await ok(client, second, REVIEW, {"id": erasure, "decision": "APPROVE"}))["reviewErasure"]
    assert approved["status"] == "APPROVED"
    executed = (await ok(client, admin, EXECUTE, {"id": erasure}))["executeErasure"]
    assert executed["status"] == "EXECUTED"
    certificate = executed["certificate"]
    assert certificate["action"] == "anonymise" and certificate["request"] == erasure
    assert "blind_indexes" in certificate["personal_data_cleared"]
    assert "删除甲" not in str(certificate) and PHONE not in str(certificate)

    async with tenant_session(db, world.tenant) as session:
        row = (
            await session.execute(
                text("SELECT name, phone_enc, phone_bidx, phone_masked FROM customers WHERE id = :id"),
                {"id": customer},
            )
        ).one()
    assert row.name != "删除甲" and (row.phone_enc, row.phone_bidx, row.phone_masked) == (None, None, None)
    listed = await ok(client, admin, "{ erasureRequests { id status } }")
    assert {"id": erasure, "status": "EXECUTED"} in listed["erasureRequests"]


async def test_legal_hold_blocks_erasure(client, db, world):
    admin, second = world.tokens["admin"], world.tokens["second_admin"]
    customer = world.customers["held"]
    held = (await ok(client, admin, HOLD, {"customerId": customer}))["setLegalHold"]
    assert held == {"__typename": "LegalHold", "legalHold": True}
    erasure = (await ok(client, admin, REQUEST, {"customerId": customer}))["requestErasure"]["id"]
    await ok(client, second, REVIEW, {"id": erasure, "decision": "APPROVE"})
    refused = (await ok(client, admin, EXECUTE, {"id": erasure}))["executeErasure"]
    assert refused == {"__typename": "InputError", "fields": [{"field": "request", "code": "legal_hold"}]}
    assert await _customer_exists(db, world.tenant, customer)


async def test_access_export_reveals_with_a_purpose_and_only_to_the_allowed(client, world):
    admin, officer = world.tokens["admin"], world.tokens["officer"]
    customer = world.customers["held"]
    vague = (await ok(client, admin, EXPORT, {"customerId": customer, "purpose": "x"}))["exportCustomerData"]
    assert vague["__typename"] == "InputError"
    exported = (await ok(client, admin, EXPORT, {"customerId": customer, "purpose": "本人查阅申请"}))[
        "exportCustomerData"
    ]
    assert exported["__typename"] == "AccessExport"
    (profile,) = exported["sections"]["customer"]
    assert (profile["name"], profile["phone"]) == ("保全乙", PHONE)
    assert exported["counts"]["pii_access_log"] >= 1  # this export's own reveal is on record
    denied = (await ok(client, officer, EXPORT, {"customerId": customer, "purpose": "本人查阅申请"}))[
        "exportCustomerData"
    ]
    assert denied == {"__typename": "PermissionError", "permission": "admin.retention"}
    run = (await ok(client, officer, RUN, {}))["runRetention"]
    assert run == {"__typename": "PermissionError", "permission": "admin.retention"}
