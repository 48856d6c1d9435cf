"""The relationship work over GraphQL: contacts, follow-ups and my day, complaints, the timeline,
risk cases and measures, early warning, the dashboard and import jobs, against real PostgreSQL.

Every tenant here is this module's own. Refused writes are checked against a snapshot of every
table they could touch (and the audit log): nothing may be left behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from tenantcrm.complaints import service as complaints_service
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts import service as contacts_service
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.service import CustomerService
from tenantcrm.graphql import imports as imports_api
from tenantcrm.graphql import relationship as relationship_api
from tenantcrm.graphql import risk as risk_api
from tenantcrm.imports import models as import_models
from tenantcrm.imports.service import ImportService
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.risk import case_service, warning_service
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.timeline.service import TimelineEntry
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, api_token_for, make_tenant, principal_of
from tests.integration.graphql.test_lending_api import counting_statements, ok, post

TODAY = date.today()
# A loan started long ago and never repaid: far past due, so the early-warning rules flag it.
OVERDUE_LOAN = {
    "product": "经营贷",
    "amount": "60000.00",
    "annual_rate": "0.06",
    "term_months": 12,
    "method": "equal_installment",
    "start_date": date(2025, 1, 15),
}
WORK_TABLES = (
    "interactions",
    "follow_ups",
    "complaints",
    "risk_cases",
    "risk_measures",
    "warnings",
    "audit_events",
)


async def snapshot(db, tenant) -> dict[str, object]:
    """Row counts of what the relationship mutations write, and what they change in place."""
    async with tenant_session(db, tenant) as session:
        state: dict[str, object] = {
            table: await session.scalar(text(f"SELECT count(*) FROM {table}")) for table in WORK_TABLES
        }
        for name, query in {
            "customers": "SELECT id, last_contact_at FROM customers ORDER BY id",
            "follow_ups_state": "SELECT id, done_at FROM follow_ups ORDER BY id",
            "complaints_state": "SELECT id, status, resolution, assignee_id FROM complaints ORDER BY id",
            "cases_state": "SELECT id, status, outcome, lessons, owner_id FROM risk_cases ORDER BY id",
            "measures_state": "SELECT id, status FROM risk_measures ORDER BY id",
            "rules_state": "SELECT kind, threshold, enabled FROM warning_rules ORDER BY kind",
            "warnings_state": "SELECT id, case_id, cleared_at FROM warnings ORDER BY id",
        }.items():
            state[name] = (await session.execute(text(query))).all()
    return state


@dataclass
class Desk:
    tenant: object
    tokens: dict[str, str]  # admin, officer, other_officer, viewer, risk
    users: dict[str, uuid.UUID]
    customer_id: str  # the officer's, with a loan far past due
    loan_id: str
    other_customer_id: str  # the other officer's


async def _customer(db, tenant, principal, name: str, **fields) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        row = await CustomerService(session, principal).create_customer(
            {"kind": "individual", "name": name, **fields}
        )
        return row.id


@pytest.fixture(scope="module")
async def desk(db, lifecycle) -> Desk:
    fixture = await make_tenant(lifecycle, "relapi")
    tenant = fixture.tenant
    emails = {"admin": fixture.admin_email}
    for key, role in (
        ("officer", "loan_officer"),
        ("other_officer", "loan_officer"),
        ("viewer", "viewer"),
        ("risk", "risk_officer"),
    ):
        emails[key] = await add_user(db, tenant, role)
    principals = {key: await principal_of(db, tenant, email) for key, email in emails.items()}
    officer = principals["officer"]
    customer_id = await _customer(db, tenant, officer, "赵关系", monthly_income="10000")
    async with tenant_session(db, tenant) as session:
        loan = await LoanService(session, officer).create_loan(customer_id, OVERDUE_LOAN)
    other_customer_id = await _customer(db, tenant, principals["other_officer"], "钱别人")
    return Desk(
        tenant=tenant,
        tokens={key: await api_token_for(db, tenant, email) for key, email in emails.items()},
        users={key: principal.user_id for key, principal in principals.items()},
        customer_id=str(customer_id),
        loan_id=str(loan.id),
        other_customer_id=str(other_customer_id),
    )


def test_the_enums_speak_the_services_vocabularies():
    def values(enum_type) -> set[str]:
        return {member.value for member in enum_type}

    assert values(relationship_api.ContactChannel) == set(contacts_service.CHANNELS)
    assert values(relationship_api.ComplaintKind) == set(complaints_service.KINDS)
    assert values(relationship_api.ComplaintCategory) == set(complaints_service.CATEGORIES)
    assert values(relationship_api.ComplaintStatus) == set(complaints_service.STATUSES)
    assert values(risk_api.RiskTrigger) == set(case_service.TRIGGERS)
    assert values(risk_api.RiskCaseStatus) == set(case_service.STATUSES)
    assert values(risk_api.RiskMeasureStatus) == set(case_service.MEASURE_STATUSES)
    assert values(risk_api.WarningKind) == set(warning_service.KINDS)
    assert values(imports_api.ImportKind) == set(import_models.KINDS)
    assert values(imports_api.ImportMode) == set(import_models.MODES)
    statuses = {*import_models.RUNNING, *import_models.FINISHED, import_models.UPLOADED}
    assert values(imports_api.ImportStatus) == statuses | {import_models.MAPPED, import_models.STAGED}
    assert "interaction" in TimelineEntry.__doc__
    for kind in values(relationship_api.TimelineKind):
        assert kind in TimelineEntry.__doc__


# --- contacts, follow-ups and my day ---

LOG = """
mutation ($customerId: ID!, $input: LogInteractionInput!) {
  logInteraction(customerId: $customerId, input: $input) {
    __typename
    ... on Interaction { id customerId at channel summary nextStep authorId }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
PLAN = """
mutation ($customerId: ID!, $input: PlanFollowUpInput!) {
  planFollowUp(customerId: $customerId, input: $input) {
    __typename
    ... on FollowUp { id customerId dueOn channel note assigneeId done }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
COMPLETE = """
mutation ($id: ID!) {
  completeFollowUp(id: $id) {
    __typename
    ... on FollowUp { id done doneAt }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
MY_DAY = """
query ($asOf: Date) {
  myDay(asOf: $asOf) {
    asOf
    overdue { id customerId customerName dueOn overdueDays }
    dueToday { id customerId customerName dueOn channel note }
    visits { id customerName dueOn }
    uncontacted { customer { id name } daysSinceContact intervalDays }
  }
}
"""
FOLLOW_UPS = """
query ($id: ID!) {
  customer(id: $id) {
    open: followUps(openOnly: true) { id done }
    all: followUps { id done doneAt }
  }
}
"""


async def test_a_logged_contact_plans_a_follow_up_that_my_day_shows_until_ticked_off(client, db, desk):
    officer = desk.tokens["officer"]
    logged = (
        await ok(
            client,
            officer,
            LOG,
            {
                "customerId": desk.customer_id,
                "input": {
                    "channel": "PHONE",
                    "summary": "客户询问提前还款",
                    "nextStep": "发送结清金额",
                    "followUpOn": TODAY.isoformat(),
                },
            },
        )
    )["logInteraction"]
    assert logged["__typename"] == "Interaction", logged
    assert (logged["customerId"], logged["channel"], logged["summary"], logged["nextStep"]) == (
        desk.customer_id,
        "PHONE",
        "客户询问提前还款",
        "发送结清金额",
    )
    assert logged["authorId"] == str(desk.users["officer"])
    async with tenant_session(db, desk.tenant) as session:
        last_contact = await session.scalar(
            text("SELECT last_contact_at FROM customers WHERE id = :id"), {"id": desk.customer_id}
        )
    assert last_contact == datetime.fromisoformat(logged["at"])

    day = (await ok(client, officer, MY_DAY, {"asOf": None}))["myDay"]
    assert day["asOf"] == TODAY.isoformat()
    (due,) = [row for row in day["dueToday"] if row["customerId"] == desk.customer_id]
    assert (due["customerName"], due["channel"], due["note"]) == ("赵关系", "PHONE", "发送结清金额")
    # A day later the same follow-up is a day overdue.
    tomorrow = (await ok(client, officer, MY_DAY, {"asOf": (TODAY + timedelta(days=1)).isoformat()}))["myDay"]
    assert [(r["id"], r["overdueDays"]) for r in tomorrow["overdue"]] == [(due["id"], 1)]
    # Someone else's day does not hold it.
    other_day = (await ok(client, desk.tokens["other_officer"], MY_DAY, {"asOf": None}))["myDay"]
    assert due["id"] not in {row["id"] for row in other_day["dueToday"]}

    done = (await ok(client, officer, COMPLETE, {"id": due["id"]}))["completeFollowUp"]
    assert (done["__typename"], done["id"], done["done"]) == ("FollowUp", due["id"], True)
    again = (await ok(client, officer, COMPLETE, {"id": due["id"]}))["completeFollowUp"]
    assert again["doneAt"] == done["doneAt"]  # ticking off twice changes nothing
    day = (await ok(client, officer, MY_DAY, {"asOf": None}))["myDay"]
    assert due["id"] not in {row["id"] for row in day["dueToday"]}
    lists = (await ok(client, officer, FOLLOW_UPS, {"id": desk.customer_id}))["customer"]
    assert due["id"] not in {row["id"] for row in lists["open"]}
    assert {row["id"]: row["done"] for row in lists["all"]}[due["id"]] is True


async def test_a_visit_is_planned_for_a_colleague_and_shows_on_their_week(client, desk):
    visit_day = TODAY + timedelta(days=3)
    planned = (
        await ok(
            client,
            desk.tokens["officer"],
            PLAN,
            {
                "customerId": desk.customer_id,
                "input": {
                    "dueOn": visit_day.isoformat(),
                    "channel": "VISIT",
                    "note": "核实经营场所",
                    "assigneeId": str(desk.users["admin"]),
                },
            },
        )
    )["planFollowUp"]
    assert planned["__typename"] == "FollowUp", planned
    assert (planned["assigneeId"], planned["dueOn"], planned["done"]) == (
        str(desk.users["admin"]),
        visit_day.isoformat(),
        False,
    )
    admin_day = (await ok(client, desk.tokens["admin"], MY_DAY, {"asOf": None}))["myDay"]
    assert planned["id"] in {row["id"] for row in admin_day["visits"]}
    officer_day = (await ok(client, desk.tokens["officer"], MY_DAY, {"asOf": None}))["myDay"]
    assert planned["id"] not in {row["id"] for row in officer_day["visits"]}
    # The viewer is not its assignee and may not write customers: a typed refusal.
    refused = (await ok(client, desk.tokens["viewer"], COMPLETE, {"id": planned["id"]}))["completeFollowUp"]
    assert refused == {"__typename": "PermissionError", "permission": "customers.write"}


async def test_my_day_lists_own_customers_waiting_for_contact(client, db, desk):
    officer = await principal_of(db, desk.tenant, (await _email(db, desk, "officer")))
    waiting = await _customer(db, desk.tenant, officer, "孙久未联系")
    async with tenant_session(db, desk.tenant) as session:
        await session.execute(
            text("UPDATE customers SET created_at = now() - interval '200 days' WHERE id = :id"),
            {"id": waiting},
        )
    day = (await ok(client, desk.tokens["officer"], MY_DAY, {"asOf": None}))["myDay"]
    (row,) = [row for row in day["uncontacted"] if row["customer"]["id"] == str(waiting)]
    assert row["customer"]["name"] == "孙久未联系"
    assert row["daysSinceContact"] >= 200 and row["intervalDays"] > 0
    other_day = (await ok(client, desk.tokens["other_officer"], MY_DAY, {"asOf": None}))["myDay"]
    assert str(waiting) not in {row["customer"]["id"] for row in other_day["uncontacted"]}


async def _email(db, desk: Desk, key: str) -> str:
    async with tenant_session(db, desk.tenant) as session:
        return await session.scalar(text("SELECT email FROM users WHERE id = :id"), {"id": desk.users[key]})


INTERACTIONS = """
query ($id: ID!, $first: Int, $after: String) {
  customer(id: $id) {
    interactions(first: $first, after: $after) {
      edges { cursor node { id at summary } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def test_interactions_page_newest_first_without_skipping_one_at_the_same_moment(client, db, desk):
    officer = await principal_of(db, desk.tenant, await _email(db, desk, "officer"))
    customer_id = await _customer(db, desk.tenant, officer, "周翻页")
    same = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    moments = [same - timedelta(days=2), same, same, same + timedelta(days=1), same + timedelta(days=2)]
    async with tenant_session(db, desk.tenant) as session:
        contacts = ContactService(session, officer)
        for number, at in enumerate(moments):
            await contacts.log_interaction(
                customer_id, {"channel": "phone", "summary": f"第{number}次", "at": at}
            )
    token, seen, after = desk.tokens["officer"], [], None
    while True:
        page = (await ok(client, token, INTERACTIONS, {"id": str(customer_id), "first": 2, "after": after}))[
            "customer"
        ]["interactions"]
        seen += [edge["node"] for edge in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5 and len({node["id"] for node in seen}) == 5
    ats = [datetime.fromisoformat(node["at"]) for node in seen]
    assert ats == sorted(ats, reverse=True)
    for bad in ("nonsense", "2026-01-05T09:30:00|not-an-id", "2026-01-05T09:30:00|" + str(uuid.uuid4())):
        body = await post(client, token, INTERACTIONS, {"id": str(customer_id), "first": 2, "after": bad})
        assert body["errors"][0]["message"] == "after is not a cursor of this list", bad
    body = await post(client, token, INTERACTIONS, {"id": str(customer_id), "first": 101})
    assert body["errors"][0]["message"] == "first must be between 1 and 100"


# --- complaints ---

RECORD = """
mutation ($customerId: ID!, $input: RecordComplaintInput!) {
  recordComplaint(customerId: $customerId, input: $input) {
    __typename
    ... on Complaint {
      id customerId loanId kind category content status receivedAt respondBy assigneeId overdue
    }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
UPDATE_COMPLAINT = """
mutation ($id: ID!, $input: UpdateComplaintInput!) {
  updateComplaint(id: $id, input: $input) {
    __typename
    ... on Complaint { id status resolution resolvedAt assigneeId }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
COMPLAINTS = """
query ($first: Int, $after: String, $status: ComplaintStatus, $overdueOnly: Boolean!) {
  complaints(first: $first, after: $after, status: $status, overdueOnly: $overdueOnly) {
    edges { cursor customerName node { id customerId status overdue respondBy } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
COMPLAINT = "query ($id: ID!) { complaint(id: $id) { id content status resolution } }"


async def _complaint(client, desk: Desk, token_key: str = "officer", **fields) -> dict:
    variables = {
        "customerId": desk.customer_id,
        "input": {"category": "FEES", "content": "评估费被重复收取", **fields},
    }
    result = (await ok(client, desk.tokens[token_key], RECORD, variables))["recordComplaint"]
    assert result["__typename"] == "Complaint", result
    return result


async def test_a_complaint_is_recorded_worked_and_resolved(client, db, desk):
    recorded = await _complaint(client, desk, loanId=desk.loan_id)
    assert (recorded["loanId"], recorded["kind"], recorded["status"], recorded["overdue"]) == (
        desk.loan_id,
        "COMPLAINT",
        "OPEN",
        False,
    )
    received = datetime.fromisoformat(recorded["receivedAt"])
    assert datetime.fromisoformat(recorded["respondBy"]) - received == timedelta(hours=48)
    assert recorded["assigneeId"] == str(desk.users["officer"])

    token = desk.tokens["officer"]
    before = await snapshot(db, desk.tenant)
    refused = (
        await ok(client, token, UPDATE_COMPLAINT, {"id": recorded["id"], "input": {"status": "RESOLVED"}})
    )["updateComplaint"]
    assert refused["__typename"] == "InputError"
    assert [(f["field"], f["code"]) for f in refused["fields"]] == [("resolution", "required")]
    assert await snapshot(db, desk.tenant) == before

    moved = (
        await ok(
            client,
            token,
            UPDATE_COMPLAINT,
            {
                "id": recorded["id"],
                "input": {"status": "IN_PROGRESS", "assigneeId": str(desk.users["admin"])},
            },
        )
    )["updateComplaint"]
    assert (moved["status"], moved["assigneeId"], moved["resolvedAt"]) == (
        "IN_PROGRESS",
        str(desk.users["admin"]),
        None,
    )
    resolved = (
        await ok(
            client,
            token,
            UPDATE_COMPLAINT,
            {"id": recorded["id"], "input": {"status": "RESOLVED", "resolution": "已退还重复收取的费用"}},
        )
    )["updateComplaint"]
    assert (resolved["status"], resolved["resolution"]) == ("RESOLVED", "已退还重复收取的费用")
    assert resolved["resolvedAt"] is not None
    read = (await ok(client, desk.tokens["viewer"], COMPLAINT, {"id": recorded["id"]}))["complaint"]
    assert read == {
        "id": recorded["id"],
        "content": "评估费被重复收取",
        "status": "RESOLVED",
        "resolution": "已退还重复收取的费用",
    }


async def test_the_complaint_list_pages_urgent_first_and_filters(client, db, desk):
    made = [await _complaint(client, desk, category="SERVICE") for _ in range(3)]
    late = made[0]["id"]
    async with tenant_session(db, desk.tenant) as session:
        await session.execute(
            text("UPDATE complaints SET respond_by = now() - interval '1 hour' WHERE id = :id"), {"id": late}
        )
    token = desk.tokens["officer"]
    seen, after = [], None
    while True:
        page = (await ok(client, token, COMPLAINTS, {"first": 2, "after": after, "overdueOnly": False}))[
            "complaints"
        ]
        seen += page["edges"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    ids = [edge["node"]["id"] for edge in seen]
    assert len(ids) == len(set(ids)) and {m["id"] for m in made} <= set(ids)
    assert ids[0] == late  # the earliest response target first
    keys = [
        (edge["node"]["status"] == "RESOLVED", datetime.fromisoformat(edge["node"]["respondBy"]))
        for edge in seen
    ]
    assert keys == sorted(keys)
    assert all(edge["customerName"] == "赵关系" for edge in seen)

    overdue = (await ok(client, token, COMPLAINTS, {"overdueOnly": True}))["complaints"]["edges"]
    assert [(edge["node"]["id"], edge["node"]["overdue"]) for edge in overdue] == [(late, True)]
    open_ones = (await ok(client, token, COMPLAINTS, {"status": "OPEN", "overdueOnly": False}))["complaints"]
    assert {edge["node"]["status"] for edge in open_ones["edges"]} == {"OPEN"}
    # Someone else's customer's complaints are not listed to the other officer.
    others = (await ok(client, desk.tokens["other_officer"], COMPLAINTS, {"overdueOnly": False}))[
        "complaints"
    ]
    assert not {m["id"] for m in made} & {edge["node"]["id"] for edge in others["edges"]}
    body = await post(client, token, COMPLAINTS, {"after": "0|yesterday|x", "overdueOnly": False})
    assert body["errors"][0]["message"] == "after is not a cursor of this list"


async def test_the_service_refuses_a_cursor_it_did_not_issue(db, desk):
    officer = await principal_of(db, desk.tenant, await _email(db, desk, "officer"))
    async with tenant_session(db, desk.tenant) as session:
        service = ComplaintService(session, officer)
        for cursor in ("", "2|2026-01-01T00:00:00+00:00|" + str(uuid.uuid4()), "0|2026-01-01|x"):
            with pytest.raises(InvalidInput):
                await service.list_complaints(after=cursor)


# --- refused input writes nothing, and keeps free text out of the error ---

SECRET = "身份证号码110101199003077777在摘要里"
OPEN_CASE = """
mutation ($customerId: ID!, $input: OpenRiskCaseInput!) {
  openRiskCase(customerId: $customerId, input: $input) {
    __typename
    ... on RiskCase { id customerId trigger warningId description status ownerId loanId }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
UPDATE_CASE = """
mutation ($id: ID!, $input: UpdateRiskCaseInput!) {
  updateRiskCase(id: $id, input: $input) {
    __typename
    ... on RiskCase { id status outcome lessons closedAt ownerId }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
ADD_MEASURE = """
mutation ($caseId: ID!, $input: RiskMeasureInput!) {
  addRiskMeasure(caseId: $caseId, input: $input) {
    __typename
    ... on RiskMeasure { id caseId description dueOn status overdue ownerId }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
UPDATE_MEASURE = """
mutation ($id: ID!, $status: RiskMeasureStatus!) {
  updateRiskMeasure(id: $id, status: $status) {
    __typename
    ... on RiskMeasure { id status }
    ... on InputError { message fields { field code message } }
    ... on NotFoundError { id }
    ... on PermissionError { permission }
  }
}
"""
UPDATE_RULES = """
mutation ($rules: [WarningRuleInput!]!) {
  updateWarningRules(rules: $rules) {
    __typename
    ... on WarningRuleSet { rules { kind threshold enabled } }
    ... on InputError { message fields { field code message } }
    ... on PermissionError { permission }
  }
}
"""
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
REFUSALS = [
    pytest.param(
        "officer",
        LOG,
        lambda d: {
            "customerId": d.customer_id,
            "input": {"channel": "PHONE", "summary": " ", "nextStep": SECRET * 30, "at": FUTURE},
        },
        "logInteraction",
        {("summary", "required"), ("at", "invalid_time"), ("nextStep", "too_long")},
        id="logInteraction",
    ),
    pytest.param(
        "officer",
        LOG,
        lambda d: {
            "customerId": d.customer_id,
            "input": {"channel": "VISIT", "summary": SECRET, "followUpOn": "2020-01-01"},
        },
        "logInteraction",
        {("followUpOn", "invalid_due_date")},
        id="logInteraction-past-follow-up",
    ),
    pytest.param(
        "officer",
        PLAN,
        lambda d: {
            "customerId": d.customer_id,
            "input": {"dueOn": "2020-01-01", "note": SECRET * 30, "assigneeId": str(uuid.uuid4())},
        },
        "planFollowUp",
        {("dueOn", "invalid_due_date"), ("note", "too_long"), ("assigneeId", "invalid_choice")},
        id="planFollowUp",
    ),
    pytest.param(
        "officer",
        RECORD,
        lambda d: {
            "customerId": d.customer_id,
            "input": {"category": "FEES", "content": "  ", "loanId": str(uuid.uuid4())},
        },
        "recordComplaint",
        {("content", "required"), ("loanId", "invalid_choice")},
        id="recordComplaint",
    ),
    pytest.param(
        "risk",
        OPEN_CASE,
        lambda d: {
            "customerId": d.customer_id,
            "input": {"description": "", "warningId": str(uuid.uuid4()), "ownerId": "nobody"},
        },
        "openRiskCase",
        {("description", "required"), ("warningId", "invalid_choice"), ("ownerId", "invalid_choice")},
        id="openRiskCase",
    ),
    pytest.param(
        "risk",
        UPDATE_RULES,
        lambda d: {
            "rules": [
                {"kind": "DAYS_PAST_DUE", "threshold": "0", "enabled": True},
                {"kind": "DEBT_TO_INCOME", "threshold": "1000", "enabled": True},
                {"kind": "NO_CONTACT_WITH_OVERDUE", "threshold": "1.5", "enabled": False},
            ]
        },
        "updateWarningRules",
        {
            ("daysPastDue.threshold", "out_of_range"),
            ("debtToIncome.threshold", "out_of_range"),
            ("noContactWithOverdue.threshold", "out_of_range"),
        },
        id="updateWarningRules",
    ),
]


@pytest.mark.parametrize(("who", "mutation", "variables", "field", "expected"), REFUSALS)
async def test_every_mutation_refuses_bad_input_and_writes_nothing(
    client, db, desk, who, mutation, variables, field, expected
):
    before = await snapshot(db, desk.tenant)
    body = await post(client, desk.tokens[who], mutation, variables(desk))
    result = body["data"][field]
    assert result["__typename"] == "InputError", result
    assert {(f["field"], f["code"]) for f in result["fields"]} == expected
    assert all(f["message"] and "{" not in f["message"] for f in result["fields"])
    assert SECRET not in str(body)  # what was written is not echoed back in the refusal
    assert await snapshot(db, desk.tenant) == before


# --- risk cases and measures ---

RISK_CASE = """
query ($id: ID!) {
  riskCase(id: $id) { id status outcome measures { id description dueOn status overdue } }
}
"""
BOARD = """
{ riskBoard { columns { status cases { customerName openMeasures overdueMeasures case { id } } } } }
"""


async def test_a_risk_case_is_opened_worked_with_measures_and_closed(client, db, desk):
    risk = desk.tokens["risk"]
    opened = (
        await ok(
            client,
            risk,
            OPEN_CASE,
            {
                "customerId": desk.customer_id,
                "input": {"trigger": "OVERDUE", "description": "连续逾期", "loanId": desk.loan_id},
            },
        )
    )["openRiskCase"]
    assert opened["__typename"] == "RiskCase", opened
    assert (opened["trigger"], opened["status"], opened["loanId"], opened["ownerId"]) == (
        "OVERDUE",
        "OPEN",
        desk.loan_id,
        str(desk.users["risk"]),
    )
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    late = (
        await ok(
            client,
            risk,
            ADD_MEASURE,
            {"caseId": opened["id"], "input": {"description": "催收", "dueOn": yesterday}},
        )
    )["addRiskMeasure"]
    assert (late["status"], late["overdue"], late["caseId"]) == ("PLANNED", True, opened["id"])
    soon = (
        await ok(
            client,
            risk,
            ADD_MEASURE,
            {
                "caseId": opened["id"],
                "input": {
                    "description": "上门核实",
                    "dueOn": (TODAY + timedelta(days=5)).isoformat(),
                    "ownerId": str(desk.users["admin"]),
                },
            },
        )
    )["addRiskMeasure"]
    assert (soon["overdue"], soon["ownerId"]) == (False, str(desk.users["admin"]))

    board = (await ok(client, risk, BOARD))["riskBoard"]
    columns = {column["status"]: column["cases"] for column in board["columns"]}
    assert list(columns) == ["OPEN", "IN_PROGRESS", "RESOLVED", "CLOSED"]
    (card,) = [card for card in columns["IN_PROGRESS"] if card["case"]["id"] == opened["id"]]
    assert (card["customerName"], card["openMeasures"], card["overdueMeasures"]) == ("赵关系", 2, 1)

    done = (await ok(client, risk, UPDATE_MEASURE, {"id": late["id"], "status": "DONE"}))["updateRiskMeasure"]
    assert done == {"__typename": "RiskMeasure", "id": late["id"], "status": "DONE"}

    before = await snapshot(db, desk.tenant)
    refused = (await ok(client, risk, UPDATE_CASE, {"id": opened["id"], "input": {"status": "CLOSED"}}))[
        "updateRiskCase"
    ]
    assert [(f["field"], f["code"]) for f in refused["fields"]] == [("outcome", "required")]
    assert await snapshot(db, desk.tenant) == before
    closed = (
        await ok(
            client,
            risk,
            UPDATE_CASE,
            {"id": opened["id"], "input": {"status": "CLOSED", "outcome": "已还清", "lessons": "早介入"}},
        )
    )["updateRiskCase"]
    assert (closed["status"], closed["outcome"], closed["lessons"]) == ("CLOSED", "已还清", "早介入")
    assert closed["closedAt"] is not None
    read = (await ok(client, desk.tokens["viewer"], RISK_CASE, {"id": opened["id"]}))["riskCase"]
    assert [(m["id"], m["status"]) for m in read["measures"]] == [
        (late["id"], "DONE"),
        (soon["id"], "PLANNED"),
    ]

    before = await snapshot(db, desk.tenant)
    on_closed = (
        await ok(
            client,
            risk,
            ADD_MEASURE,
            {"caseId": opened["id"], "input": {"description": "x", "dueOn": yesterday}},
        )
    )["addRiskMeasure"]
    assert [(f["field"], f["code"]) for f in on_closed["fields"]] == [("case", "closed")]
    assert await snapshot(db, desk.tenant) == before


async def test_risk_work_needs_risk_manage(client, db, desk):
    opened = (
        await ok(
            client,
            desk.tokens["admin"],
            OPEN_CASE,
            {"customerId": desk.customer_id, "input": {"description": "x"}},
        )
    )["openRiskCase"]
    measure = (
        await ok(
            client,
            desk.tokens["admin"],
            ADD_MEASURE,
            {"caseId": opened["id"], "input": {"description": "y", "dueOn": TODAY.isoformat()}},
        )
    )["addRiskMeasure"]
    before = await snapshot(db, desk.tenant)
    officer = desk.tokens["officer"]
    attempts = [
        (OPEN_CASE, {"customerId": desk.customer_id, "input": {"description": "z"}}, "openRiskCase"),
        (UPDATE_CASE, {"id": opened["id"], "input": {"status": "IN_PROGRESS"}}, "updateRiskCase"),
        (
            ADD_MEASURE,
            {"caseId": opened["id"], "input": {"description": "z", "dueOn": TODAY.isoformat()}},
            "addRiskMeasure",
        ),
        (UPDATE_MEASURE, {"id": measure["id"], "status": "DONE"}, "updateRiskMeasure"),
        (UPDATE_RULES, {"rules": []}, "updateWarningRules"),
        (EVALUATE, {"asOf": None}, "evaluateWarnings"),
    ]
    for mutation, variables, field in attempts:
        result = (await ok(client, officer, mutation, variables))[field]
        assert result == {"__typename": "PermissionError", "permission": "risk.manage"}, field
    assert await snapshot(db, desk.tenant) == before
    # Reading a case of one's own customer needs no more than customers.read.
    assert (await ok(client, officer, RISK_CASE, {"id": opened["id"]}))["riskCase"]["id"] == opened["id"]


# --- early warning ---

EVALUATE = """
mutation ($asOf: Date) {
  evaluateWarnings(asOf: $asOf) {
    __typename
    ... on WarningEvaluation { raised cleared live }
    ... on PermissionError { permission }
  }
}
"""
FLAGGED = """
query ($kind: WarningKind) {
  flaggedCustomers(kind: $kind) {
    customerId customerName
    warning { id kind caseId reason { daysPastDue daysSinceContact classificationFrom debtToIncome } }
  }
}
"""
WARNINGS = "query ($id: ID!) { customer(id: $id) { warnings { id kind caseId reason { daysPastDue } } } }"
RULES = "{ warningRules { kind threshold enabled } }"


async def test_warnings_are_raised_listed_and_open_a_case(client, db, desk):
    risk = desk.tokens["risk"]
    evaluated = (await ok(client, risk, EVALUATE, {"asOf": None}))["evaluateWarnings"]
    assert evaluated["__typename"] == "WarningEvaluation" and evaluated["raised"] >= 1
    async with tenant_session(db, desk.tenant) as session:
        live = await session.scalar(text("SELECT count(*) FROM warnings WHERE cleared_at IS NULL"))
    assert evaluated["live"] == live

    flagged = (await ok(client, risk, FLAGGED, {"kind": "DAYS_PAST_DUE"}))["flaggedCustomers"]
    (row,) = [row for row in flagged if row["customerId"] == desk.customer_id]
    assert row["customerName"] == "赵关系" and row["warning"]["kind"] == "DAYS_PAST_DUE"
    assert row["warning"]["reason"]["daysPastDue"] > 30
    assert {r["warning"]["kind"] for r in flagged} == {"DAYS_PAST_DUE"}
    on_customer = (await ok(client, desk.tokens["officer"], WARNINGS, {"id": desk.customer_id}))["customer"]
    assert row["warning"]["id"] in {w["id"] for w in on_customer["warnings"]}
    # Out of the other officer's scope: not listed.
    theirs = (await ok(client, desk.tokens["other_officer"], FLAGGED, {"kind": None}))["flaggedCustomers"]
    assert desk.customer_id not in {r["customerId"] for r in theirs}

    warning_id = row["warning"]["id"]
    opened = (
        await ok(
            client,
            risk,
            OPEN_CASE,
            {"customerId": desk.customer_id, "input": {"description": "预警立案", "warningId": warning_id}},
        )
    )["openRiskCase"]
    assert (opened["trigger"], opened["warningId"]) == ("EARLY_WARNING", warning_id)
    linked = (await ok(client, risk, WARNINGS, {"id": desk.customer_id}))["customer"]["warnings"]
    assert {w["id"]: w["caseId"] for w in linked}[warning_id] == opened["id"]
    before = await snapshot(db, desk.tenant)
    twice = (
        await ok(
            client,
            risk,
            OPEN_CASE,
            {"customerId": desk.customer_id, "input": {"description": "再次", "warningId": warning_id}},
        )
    )["openRiskCase"]
    assert [(f["field"], f["code"]) for f in twice["fields"]] == [("warningId", "already_in_case")]
    assert await snapshot(db, desk.tenant) == before


async def test_warning_rules_are_read_and_changed(client, db, desk):
    risk = desk.tokens["risk"]
    rules = {r["kind"]: r for r in (await ok(client, desk.tokens["viewer"], RULES))["warningRules"]}
    assert rules["DAYS_PAST_DUE"] == {"kind": "DAYS_PAST_DUE", "threshold": "30", "enabled": True}
    assert rules["CLASSIFICATION_WORSENED"]["threshold"] is None
    assert rules["DEBT_TO_INCOME"]["threshold"] == "0.5000"
    changed = (
        await ok(
            client,
            risk,
            UPDATE_RULES,
            {"rules": [{"kind": "DEBT_TO_INCOME", "threshold": "0.8", "enabled": False}]},
        )
    )["updateWarningRules"]
    saved = {r["kind"]: r for r in changed["rules"]}
    assert saved["DEBT_TO_INCOME"] == {"kind": "DEBT_TO_INCOME", "threshold": "0.8000", "enabled": False}
    assert saved["DAYS_PAST_DUE"] == rules["DAYS_PAST_DUE"]  # not given: unchanged
    again = {r["kind"]: r for r in (await ok(client, risk, RULES))["warningRules"]}
    assert again == saved
    restored = (
        await ok(client, risk, UPDATE_RULES, {"rules": [{"kind": "DEBT_TO_INCOME", "threshold": "0.5"}]})
    )["updateWarningRules"]
    assert restored["__typename"] == "WarningRuleSet"


# --- the timeline ---

TIMELINE = """
query ($id: ID!, $first: Int, $before: String) {
  customer(id: $id) {
    timeline(first: $first, before: $before) {
      entries { at kind refId summary channel loanId product amount complaintCategory content trigger caseId }
      hasMore
      nextBefore
    }
  }
}
"""


async def test_the_timeline_pages_every_kind_newest_first(client, db, desk):
    officer = await principal_of(db, desk.tenant, await _email(db, desk, "officer"))
    admin = await principal_of(db, desk.tenant, await _email(db, desk, "admin"))
    customer_id = await _customer(db, desk.tenant, officer, "吴时间线")
    async with tenant_session(db, desk.tenant) as session:
        await LoanService(session, officer).create_loan(customer_id, OVERDUE_LOAN)
        await ContactService(session, officer).log_interaction(
            customer_id, {"channel": "wechat", "summary": "微信沟通"}
        )
        await ComplaintService(session, officer).record(
            customer_id, {"category": "service", "content": "态度差"}
        )
        await RiskCaseService(session, admin).open_case(customer_id, {"description": "关注"})
    token, entries, before = desk.tokens["officer"], [], None
    while True:
        page = (await ok(client, token, TIMELINE, {"id": str(customer_id), "first": 2, "before": before}))[
            "customer"
        ]["timeline"]
        entries += page["entries"]
        assert len(page["entries"]) <= 2
        if not page["hasMore"]:
            assert page["nextBefore"] is None
            break
        before = page["nextBefore"]
    kinds = {entry["kind"]: entry for entry in entries}
    assert {"LOAN_CREATED", "INTERACTION", "COMPLAINT", "RISK_CASE_OPENED"} <= set(kinds)
    assert (kinds["INTERACTION"]["channel"], kinds["INTERACTION"]["summary"]) == ("WECHAT", "微信沟通")
    assert (kinds["LOAN_CREATED"]["product"], kinds["LOAN_CREATED"]["amount"]) == ("经营贷", "60000.00")
    assert (kinds["COMPLAINT"]["complaintCategory"], kinds["COMPLAINT"]["content"]) == ("SERVICE", "态度差")
    assert kinds["RISK_CASE_OPENED"]["trigger"] == "MANUAL"
    refs = [(entry["kind"], entry["refId"]) for entry in entries]
    assert len(refs) == len(set(refs))
    ats = [datetime.fromisoformat(entry["at"]) for entry in entries]
    assert ats == sorted(ats, reverse=True)
    body = await post(client, token, TIMELINE, {"id": str(customer_id), "before": "not a cursor"})
    assert body["errors"][0]["message"] == "before is not a cursor of this timeline"


# --- scope: other officers and other tenants see nothing ---


async def test_out_of_scope_and_other_tenant_ids_look_missing(client, db, desk, token_b):
    complaint = await _complaint(client, desk)
    case = (
        await ok(
            client,
            desk.tokens["admin"],
            OPEN_CASE,
            {"customerId": desk.customer_id, "input": {"description": "x"}},
        )
    )["openRiskCase"]
    measure = (
        await ok(
            client,
            desk.tokens["admin"],
            ADD_MEASURE,
            {"caseId": case["id"], "input": {"description": "y", "dueOn": TODAY.isoformat()}},
        )
    )["addRiskMeasure"]
    follow_up = (
        await ok(
            client,
            desk.tokens["officer"],
            PLAN,
            {"customerId": desk.customer_id, "input": {"dueOn": TODAY.isoformat()}},
        )
    )["planFollowUp"]
    reads = "query ($c: ID!, $r: ID!) { complaint(id: $c) { id } riskCase(id: $r) { id } }"
    for token in (desk.tokens["other_officer"], token_b):
        data = await ok(client, token, reads, {"c": complaint["id"], "r": case["id"]})
        assert data == {"complaint": None, "riskCase": None}
    before = await snapshot(db, desk.tenant)
    writes = [
        (
            LOG,
            {"customerId": desk.customer_id, "input": {"channel": "PHONE", "summary": "x"}},
            "logInteraction",
            desk.customer_id,
        ),
        (
            PLAN,
            {"customerId": desk.customer_id, "input": {"dueOn": TODAY.isoformat()}},
            "planFollowUp",
            desk.customer_id,
        ),
        (COMPLETE, {"id": follow_up["id"]}, "completeFollowUp", follow_up["id"]),
        (
            RECORD,
            {"customerId": desk.customer_id, "input": {"category": "FEES", "content": "x"}},
            "recordComplaint",
            desk.customer_id,
        ),
        (
            UPDATE_COMPLAINT,
            {"id": complaint["id"], "input": {"status": "IN_PROGRESS"}},
            "updateComplaint",
            complaint["id"],
        ),
    ]
    for token in (desk.tokens["other_officer"], token_b):
        for mutation, variables, field, target in writes:
            result = (await ok(client, token, mutation, variables))[field]
            assert result == {"__typename": "NotFoundError", "id": target}, field
    assert await snapshot(db, desk.tenant) == before
    # The other tenant's admin has risk.manage: risk ids of this tenant are simply not found.
    risk_writes = [
        (
            OPEN_CASE,
            {"customerId": desk.customer_id, "input": {"description": "x"}},
            "openRiskCase",
            desk.customer_id,
        ),
        (UPDATE_CASE, {"id": case["id"], "input": {"status": "IN_PROGRESS"}}, "updateRiskCase", case["id"]),
        (
            ADD_MEASURE,
            {"caseId": case["id"], "input": {"description": "x", "dueOn": TODAY.isoformat()}},
            "addRiskMeasure",
            case["id"],
        ),
        (UPDATE_MEASURE, {"id": measure["id"], "status": "DONE"}, "updateRiskMeasure", measure["id"]),
    ]
    for mutation, variables, field, target in risk_writes:
        result = (await ok(client, token_b, mutation, variables))[field]
        assert result == {"__typename": "NotFoundError", "id": target}, field
    for value in (str(uuid.uuid4()), "not-an-id"):
        result = (await ok(client, desk.tokens["admin"], COMPLETE, {"id": value}))["completeFollowUp"]
        assert result == {"__typename": "NotFoundError", "id": value}
    assert await snapshot(db, desk.tenant) == before


async def test_a_viewer_gets_typed_permission_errors_and_writes_nothing(client, db, desk):
    before = await snapshot(db, desk.tenant)
    viewer = desk.tokens["viewer"]
    for mutation, variables, field in [
        (
            LOG,
            {"customerId": desk.customer_id, "input": {"channel": "PHONE", "summary": "x"}},
            "logInteraction",
        ),
        (PLAN, {"customerId": desk.customer_id, "input": {"dueOn": TODAY.isoformat()}}, "planFollowUp"),
        (
            RECORD,
            {"customerId": desk.customer_id, "input": {"category": "FEES", "content": "x"}},
            "recordComplaint",
        ),
    ]:
        result = (await ok(client, viewer, mutation, variables))[field]
        assert result == {"__typename": "PermissionError", "permission": "customers.write"}, field
    assert await snapshot(db, desk.tenant) == before


# --- the dashboard ---

DASHBOARD = """
query ($asOf: Date) {
  dashboard(asOf: $asOf) {
    asOf
    kpis {
      customers outstanding overdueAmount overdueRate newLoansThisMonth disbursedThisMonth followUpsDue
      flaggedCustomers
    }
    creditGrades { key count amount }
    classes { key count amount }
    regions { code name customers outstanding }
    trend { month disbursed overdueAmount }
  }
}
"""


async def test_the_dashboard_follows_the_record_scope(client, db, lifecycle):
    fixture = await make_tenant(lifecycle, "reldash")
    tenant = fixture.tenant
    officer_email = await add_user(db, tenant, "loan_officer")
    officer = await principal_of(db, tenant, officer_email)
    admin = await principal_of(db, tenant, fixture.admin_email)
    mine = await _customer(db, tenant, officer, "郑", region_code="440100")
    await _customer(db, tenant, admin, "王")
    async with tenant_session(db, tenant) as session:
        await LoanService(session, officer).create_loan(
            mine, {**OVERDUE_LOAN, "start_date": date(2025, 6, 2), "amount": "12000.00"}
        )
    as_of = "2025-06-30"
    own = (await ok(client, await api_token_for(db, tenant, officer_email), DASHBOARD, {"asOf": as_of}))[
        "dashboard"
    ]
    everyone = (
        await ok(client, await api_token_for(db, tenant, fixture.admin_email), DASHBOARD, {"asOf": as_of})
    )["dashboard"]
    assert (own["kpis"]["customers"], everyone["kpis"]["customers"]) == (1, 2)
    kpis = own["kpis"]
    assert (kpis["outstanding"], kpis["overdueAmount"], kpis["overdueRate"]) == ("12000.00", "0.00", "0.0000")
    assert (kpis["newLoansThisMonth"], kpis["disbursedThisMonth"]) == (1, "12000.00")
    assert own["classes"] == [{"key": "normal", "count": 1, "amount": "12000.00"}]
    (region,) = own["regions"]
    assert (region["code"], region["customers"], region["outstanding"]) == ("440100", 1, "12000.00")
    assert region["name"]
    months = [f"2024-{m:02d}" for m in range(7, 13)] + [f"2025-{m:02d}" for m in range(1, 7)]
    assert [point["month"] for point in own["trend"]] == months
    assert own["trend"][-1]["disbursed"] == "12000.00"


# --- import jobs ---

JOBS = "query { importJobs(first: 5) { id kind fileName status progress { rowsDone totalRows percent } } }"
JOB = "query ($id: ID!) { importJob(id: $id) { id status acceptedRows refusedRows createdRows } }"


async def test_import_jobs_are_read_by_their_uploader_and_all_scope_roles(client, db, desk, settings):
    officer = await principal_of(db, desk.tenant, await _email(db, desk, "officer"))
    cipher = cipher_source(db, master_key_ring(settings), desk.tenant)
    async with tenant_session(db, desk.tenant) as session:
        job = await ImportService(session, officer, cipher).upload("名单.csv", "姓名\n甲\n乙\n".encode())
    job_id = str(job.id)
    listed = (await ok(client, desk.tokens["officer"], JOBS))["importJobs"]
    assert listed[0] == {
        "id": job_id,
        "kind": "CUSTOMERS",
        "fileName": "名单.csv",
        "status": "UPLOADED",
        "progress": {"rowsDone": 0, "totalRows": 0, "percent": 0},
    }
    assert (await ok(client, desk.tokens["admin"], JOB, {"id": job_id}))["importJob"] == {
        "id": job_id,
        "status": "UPLOADED",
        "acceptedRows": 0,
        "refusedRows": 0,
        "createdRows": 0,
    }
    assert (await ok(client, desk.tokens["other_officer"], JOB, {"id": job_id}))["importJob"] is None
    assert job_id not in {
        j["id"] for j in (await ok(client, desk.tokens["other_officer"], JOBS))["importJobs"]
    }
    body = await post(client, desk.tokens["viewer"], JOB, {"id": job_id})
    assert body["data"] == {"importJob": None}
    assert body["errors"][0]["message"] == "missing permission import"


# --- nested fields: a constant number of statements whatever the page size ---

NESTED = """
query ($first: Int!) {
  customers(first: $first) {
    edges { node {
      id
      interactions(first: 3) { edges { node { id summary } } pageInfo { hasNextPage } }
      followUps(openOnly: true) { id dueOn }
      complaints { id status }
      riskCases { id measures { id overdue } }
      warnings { id kind reason { daysPastDue } }
    } }
  }
}
"""


@pytest.fixture(scope="module")
async def crowd(db, lifecycle) -> str:
    """20 customers, each with two contacts, a follow-up, a complaint, a case with a measure, an
    overdue loan and the flags the rules raise on it; the admin's token."""
    fixture = await make_tenant(lifecycle, "relcrowd")
    tenant = fixture.tenant
    admin = await principal_of(db, tenant, fixture.admin_email)
    for number in range(20):
        async with tenant_session(db, tenant) as session:
            customer = await CustomerService(session, admin).create_customer(
                {"kind": "individual", "name": f"群 {number:02d}"}
            )
            await LoanService(session, admin).create_loan(customer.id, OVERDUE_LOAN)
            contacts = ContactService(session, admin)
            for summary in ("一", "二"):
                await contacts.log_interaction(customer.id, {"channel": "phone", "summary": summary})
            await contacts.plan_follow_up(customer.id, {"due_on": TODAY})
            await ComplaintService(session, admin).record(
                customer.id, {"category": "fees", "content": "费用"}
            )
            cases = RiskCaseService(session, admin)
            case = await cases.open_case(customer.id, {"description": "关注"})
            await cases.add_measure(case.id, {"description": "核实", "due_on": TODAY})
    async with tenant_session(db, tenant) as session:
        await WarningService(session, admin).evaluate()
    return await api_token_for(db, tenant, fixture.admin_email)


async def test_nested_relationship_fields_take_the_same_statements_for_5_or_20_customers(client, db, crowd):
    await ok(client, crowd, NESTED, {"first": 1})  # the token's first use is recorded: not counted
    with counting_statements(db) as few:
        small = await ok(client, crowd, NESTED, {"first": 5})
    with counting_statements(db) as many:
        large = await ok(client, crowd, NESTED, {"first": 20})
    nodes = [edge["node"] for edge in large["customers"]["edges"]]
    assert len(small["customers"]["edges"]) == 5 and len(nodes) == 20
    assert all(len(node["interactions"]["edges"]) == 2 for node in nodes)
    assert all(node["interactions"]["pageInfo"]["hasNextPage"] is False for node in nodes)
    assert all(len(node["followUps"]) == 1 and len(node["complaints"]) == 1 for node in nodes)
    assert all(len(node["riskCases"]) == 1 and len(node["riskCases"][0]["measures"]) == 1 for node in nodes)
    assert all(node["warnings"] and node["warnings"][0]["reason"] for node in nodes)
    assert len(few) == len(many), f"{len(few)} statements for 5 customers, {len(many)} for 20"
    # Scope and principal, the page, then one per nested list.
    assert len(many) <= 15, many


async def test_the_batches_keep_to_the_record_scope(db, desk):
    """follow_ups_for_customers and complaints_for_customers leave out customers out of scope."""
    other = await principal_of(db, desk.tenant, await _email(db, desk, "other_officer"))
    mine, theirs = uuid.UUID(desk.customer_id), uuid.UUID(desk.other_customer_id)
    async with tenant_session(db, desk.tenant) as session:
        await ContactService(session, other).plan_follow_up(theirs, {"due_on": TODAY})
        await ComplaintService(session, other).record(theirs, {"category": "other", "content": "x"})
    async with tenant_session(db, desk.tenant) as session:
        follow_ups = await ContactService(session, other).follow_ups_for_customers([mine, theirs])
        complaints = await ComplaintService(session, other).complaints_for_customers([mine, theirs])
    assert follow_ups[mine] == [] and complaints[mine] == []
    assert [row.customer_id for row in follow_ups[theirs]] == [theirs]
    assert [row.customer_id for row in complaints[theirs]] == [theirs]
