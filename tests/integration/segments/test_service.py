"""SegmentService over a small seeded book: counts, pages, breakdowns, scope, masking, saved segments."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select, update

from tenantcrm.audit.models import AuditEvent
from tenantcrm.auth.models import Team, User
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.models import EarlyWarning
from tenantcrm.segments.models import Segment
from tenantcrm.segments.service import SegmentNotFound, SegmentService
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of

PHONE = "13812345678"


def loan_terms(months_ago: int, product: str) -> dict[str, str]:
    return {
        "product": product,
        "amount": "120000",
        "annual_rate": "6%",
        "term_months": "12",
        "method": "equal_installment",
        "start_date": add_months(date.today(), -months_ago).isoformat(),
    }


@pytest.fixture(scope="module")
async def book(lifecycle, db, settings):
    """Teams east and west. Customers: A (east officer 1: high risk, Shanghai, AA/700, vip, an
    overdue 消费贷 loan classed substandard, contacted today), B (east officer 1: enterprise
    prospect, Beijing, no loan, never contacted), C (east officer 2: high risk, Shanghai, a new
    房抵贷 loan, an open risk case), D (west officer: medium risk, Shanghai, vip and old, flagged)."""
    fixture = await make_tenant(lifecycle, "seg")
    tenant = fixture.tenant
    async with tenant_session(db, tenant) as session:
        east, west = Team(id=uuid.uuid4(), name="east"), Team(id=uuid.uuid4(), name="west")
        session.add_all([east, west])
    people = {"admin": await principal_of(db, tenant, fixture.admin_email)}
    for label, role, team in [
        ("east_officer", "loan_officer", east),
        ("east_officer_2", "loan_officer", east),
        ("west_officer", "loan_officer", west),
        ("east_manager", "manager", east),
        ("east_manager_2", "manager", east),
        ("west_manager", "manager", west),
        ("viewer", "viewer", None),
    ]:
        email = await add_user(db, tenant, role)
        async with tenant_session(db, tenant) as session:
            await session.execute(
                update(User).where(User.email == email).values(team_id=team.id if team else None)
            )
        people[label] = await principal_of(db, tenant, email)
    ring = master_key_ring(settings)
    ids = {}
    async with tenant_session(db, tenant) as session:

        def customers(who):
            return CustomerService(session, people[who], cipher_source(db, ring, tenant))

        a = await customers("east_officer").create_customer(
            {
                "name": "甲",
                "risk_level": "high",
                "region_code": "310000",
                "credit_grade": "AA",
                "credit_score": "700",
                "monthly_income": "20000",
                "tags": "vip",
                "phone": PHONE,
            }
        )
        b = await customers("east_officer").create_customer(
            {"name": "乙公司", "kind": "enterprise", "region_code": "110000"}
        )
        c = await customers("east_officer_2").create_customer(
            {"name": "丙", "risk_level": "high", "region_code": "310000"}
        )
        d = await customers("west_officer").create_customer(
            {"name": "丁", "risk_level": "medium", "region_code": "310000", "tags": "vip, old"}
        )
        late = await LoanService(session, people["east_officer"]).create_loan(a.id, loan_terms(3, "消费贷"))
        await LoanService(session, people["admin"]).classify(late.id, "substandard", "Missed payments")
        await LoanService(session, people["east_officer_2"]).create_loan(c.id, loan_terms(0, "房抵贷"))
        await ContactService(session, people["east_officer"]).log_interaction(
            a.id, {"channel": "phone", "summary": "Called"}
        )
        await RiskCaseService(session, people["admin"]).open_case(c.id, {"description": "Watch"})
        session.add(EarlyWarning(id=uuid.uuid4(), customer_id=d.id, kind="debt_to_income", details={}))
        arrears = await LoanService(session, people["admin"]).arrears(late)
        ids = {"A": a.id, "B": b.id, "C": c.id, "D": d.id}
    return fixture, people, ids, arrears.days_past_due


def cond(field: str, op: str, value: object) -> dict[str, object]:
    return {"field": field, "op": op, "value": value}


async def matching(db, book, raw, who="admin") -> set[str]:
    fixture, people, ids, _ = book
    names = {v: k for k, v in ids.items()}
    async with tenant_session(db, fixture.tenant) as session:
        service = SegmentService(session, people[who])
        page = await service.customers(raw, first=100)
        count = await service.count(raw)
    found = {names[c.id] for c in page.customers}
    assert count == len(found) and not page.has_next_page
    return found


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"and": []}, "ABCD"),
        (cond("riskLevel", "eq", "high"), "AC"),
        (cond("riskLevel", "ne", "high"), "BD"),
        (cond("kind", "eq", "enterprise"), "B"),
        (cond("regionCode", "in", ["310000"]), "ACD"),
        (cond("creditGrade", "ne", "AA"), "BCD"),
        (cond("creditScore", "gte", 600), "A"),
        ({"not": cond("creditScore", "gte", 600)}, "BCD"),
        (cond("monthlyIncome", "between", [10000, 30000]), "A"),
        (cond("tags", "contains", "vip"), "AD"),
        (cond("tags", "contains", ["vip", "old"]), "D"),
        (cond("tags", "in", ["old", "none"]), "D"),
        (cond("status", "eq", "prospect"), "BD"),
        (cond("outstandingBalance", "gt", 0), "AC"),
        (cond("outstandingBalance", "eq", 0), "BD"),
        (cond("outstandingBalance", "gte", 120000), "AC"),
        (cond("outstandingBalance", "between", [1, 119999.99]), ""),
        (cond("classification", "eq", "substandard"), "A"),
        (cond("classification", "ne", "substandard"), "BCD"),
        (cond("classification", "in", ["normal", "substandard"]), "AC"),
        (cond("daysPastDue", "gt", 0), "A"),
        (cond("daysPastDue", "eq", 0), "BCD"),
        (cond("arrearsBucket", "eq", "current"), "BCD"),
        (cond("arrearsBucket", "ne", "current"), "A"),
        (cond("product", "eq", "消费贷"), "A"),
        (cond("product", "contains", "房抵"), "C"),
        (cond("product", "ne", "消费贷"), "BCD"),
        (cond("hasOpenRiskCase", "eq", True), "C"),
        (cond("hasOpenRiskCase", "ne", True), "ABD"),
        (cond("flagged", "eq", True), "D"),
        (cond("flagged", "eq", False), "ABC"),
        (cond("daysSinceLastContact", "gte", 30), "BCD"),
        (cond("daysSinceLastContact", "lte", 1), "A"),
        (cond("createdAt", "gte", date.today().isoformat()), "ABCD"),
        (cond("createdAt", "lt", date.today().isoformat()), ""),
        (
            {
                "and": [
                    cond("riskLevel", "eq", "high"),
                    cond("regionCode", "eq", "310000"),
                    cond("daysPastDue", "gt", 0),
                    cond("daysSinceLastContact", "lt", 30),
                ]
            },
            "A",
        ),
        ({"or": [cond("kind", "eq", "enterprise"), cond("flagged", "eq", True)]}, "BD"),
        ({"not": {"or": [cond("kind", "eq", "enterprise"), cond("flagged", "eq", True)]}}, "AC"),
    ],
)
async def test_counts_and_pages_match_the_book(db, book, raw, expected):
    assert await matching(db, book, raw) == set(expected)


async def test_days_past_due_agree_with_the_loan_ledger(db, book):
    days = book[3]
    assert 28 <= days <= 92  # three months after disbursement, nothing paid
    assert await matching(db, book, cond("daysPastDue", "eq", days)) == {"A"}
    assert await matching(db, book, cond("daysPastDue", "between", [days, days + 5])) == {"A"}
    assert await matching(db, book, cond("daysPastDue", "gt", days)) == set()
    bucket = "1-30" if days <= 30 else "31-60" if days <= 60 else "61-90"
    assert await matching(db, book, cond("arrearsBucket", "eq", bucket)) == {"A"}


async def test_owner_and_team_fields(db, book):
    people = book[1]
    assert await matching(db, book, cond("ownerId", "eq", str(people["west_officer"].user_id))) == {"D"}
    east = str(people["east_officer"].team_id)
    assert await matching(db, book, cond("teamId", "eq", east)) == {"A", "B", "C"}


async def test_an_officer_counts_only_own_customers_and_a_manager_the_team(db, book):
    assert await matching(db, book, cond("riskLevel", "eq", "high"), "east_officer") == {"A"}
    assert await matching(db, book, cond("regionCode", "eq", "310000"), "east_manager") == {"A", "C"}
    assert await matching(db, book, cond("regionCode", "eq", "310000"), "west_officer") == {"D"}
    assert await matching(db, book, {"and": []}, "viewer") == {"A", "B", "C", "D"}


async def test_results_are_masked_rows(db, book):
    fixture, people, ids, _ = book
    async with tenant_session(db, fixture.tenant) as session:
        page = await SegmentService(session, people["admin"]).customers(cond("tags", "contains", "vip"))
    a = next(c for c in page.customers if c.id == ids["A"])
    assert a.phone_masked == "138****5678"
    assert all(PHONE not in str(getattr(a, column)) for column in ("phone_masked", "name", "tags"))
    assert a.phone_enc is not None and PHONE.encode() not in a.phone_enc


async def test_pages_follow_cursors(db, book):
    fixture, people, ids, _ = book
    async with tenant_session(db, fixture.tenant) as session:
        service = SegmentService(session, people["admin"])
        first = await service.customers({"and": []}, first=3, with_total=True)
        second = await service.customers({"and": []}, first=3, after=first.end_cursor)
    assert first.has_next_page and first.total_count == 4 and len(first.customers) == 3
    assert {c.id for c in first.customers + second.customers} == set(ids.values())


async def test_breakdowns(db, book):
    fixture, people, _, days = book
    async with tenant_session(db, fixture.tenant) as session:
        service = SegmentService(session, people["admin"])
        everyone = {"and": []}
        risk = await service.breakdown(everyone, "riskLevel")
        classes = await service.breakdown(everyone, "classification")
        buckets = await service.breakdown(everyone, "arrearsBucket")
        products = await service.breakdown(everyone, "product")
        owners = await service.breakdown(cond("regionCode", "eq", "310000"), "ownerId")
        own = await SegmentService(session, people["east_officer"]).breakdown(everyone, "riskLevel")
        with pytest.raises(InvalidInput):
            await service.breakdown(everyone, "name")
    assert [(s.key, s.count) for s in risk] == [("high", 2), ("low", 1), ("medium", 1)]
    assert {s.key: s.count for s in classes} == {"substandard": 1, "normal": 1, "none": 2}
    bucket = "1-30" if days <= 30 else "31-60" if days <= 60 else "61-90"
    assert {s.key: s.count for s in buckets} == {bucket: 1, "current": 1, "none": 2}
    assert {s.key: s.count for s in products} == {"消费贷": 1, "房抵贷": 1, "none": 2}
    assert {(s.key, s.count) for s in own} == {("high", 1), ("low", 1)}
    assert sorted(s.count for s in owners) == [1, 1, 1] and all(s.label for s in owners)


async def test_an_invalid_filter_is_refused_before_any_query(db, book):
    fixture, people, _, _ = book
    async with tenant_session(db, fixture.tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await SegmentService(session, people["admin"]).count({"and": [cond("name", "eq", "甲")]})
    assert refused.value.errors[0].text() == "and[0]: unknown field 'name'."


async def test_saving_needs_segments_manage_and_writes_nothing_when_refused(db, book):
    fixture, people, _, _ = book
    async with tenant_session(db, fixture.tenant) as session:
        before = await session.scalar(select(func.count()).select_from(Segment))
        with pytest.raises(PermissionDenied):
            await SegmentService(session, people["east_officer"]).save(
                {"name": "Mine", "filter": {"and": []}}
            )
        with pytest.raises(InvalidInput) as refused:
            await SegmentService(session, people["east_manager"]).save(
                {"name": " ", "filter": {"and": [cond("riskLevel", "eq", "extreme")]}}
            )
        after = await session.scalar(select(func.count()).select_from(Segment))
    assert {e.field for e in refused.value.errors} == {"name", "filter"}
    assert before == after


async def test_saved_segments_are_visible_to_the_owner_and_when_shared_to_the_team(db, book):
    fixture, people, _, _ = book
    high = {"and": [cond("riskLevel", "eq", "high"), cond("monthlyIncome", "gte", 100.5)]}
    async with tenant_session(db, fixture.tenant) as session:
        manager = SegmentService(session, people["east_manager"])
        private = await manager.save({"name": "私有", "filter": high})
        shared = await manager.save({"name": "共享", "description": "team", "filter": high, "shared": "on"})
        private_id, shared_id = private.id, shared.id
    assert (
        shared.filter == {"and": [cond("riskLevel", "eq", "high"), cond("monthlyIncome", "gte", "100.50")]}
        and shared.shared
        and not private.shared
    )
    async with tenant_session(db, fixture.tenant) as session:
        teammate = SegmentService(session, people["east_officer"])
        assert shared_id in {s.id for s in await teammate.list_segments()}
        assert private_id not in {s.id for s in await teammate.list_segments()}
        assert (await teammate.get(shared_id)).name == "共享"
        assert await teammate.count((await teammate.get(shared_id)).filter) == 1  # A, in their own scope
        with pytest.raises(SegmentNotFound):
            await teammate.get(private_id)
        for outsider in ("west_manager", "viewer"):
            with pytest.raises(SegmentNotFound):
                await SegmentService(session, people[outsider]).get(shared_id)
        with pytest.raises(SegmentNotFound):
            await SegmentService(session, people["admin"]).get(private_id)
        with pytest.raises(SegmentNotFound):
            await teammate.get("not-a-uuid")
        # Shared is read-only for the team: only the owner changes or deletes it.
        with pytest.raises(PermissionDenied):
            await SegmentService(session, people["east_manager_2"]).update(shared_id, {"name": "Taken"})
        with pytest.raises(PermissionDenied):
            await SegmentService(session, people["east_manager_2"]).delete(shared_id)


async def test_update_and_delete_are_audited(db, book):
    fixture, people, _, _ = book
    async with tenant_session(db, fixture.tenant) as session:
        service = SegmentService(session, people["east_manager"])
        segment = await service.save({"name": "Overdue", "filter": cond("daysPastDue", "gt", 0)})
        segment_id = segment.id
        await service.update(segment_id, {"name": "Overdue east", "shared": True})
        with pytest.raises(InvalidInput):
            await service.update(segment_id, {"filter": cond("daysPastDue", "gt", "many")})
        assert (await service.get(segment_id)).filter == cond("daysPastDue", "gt", 0)
        await service.delete(segment_id)
        with pytest.raises(SegmentNotFound):
            await service.get(segment_id)
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.changes)
                .where(AuditEvent.entity_type == "segment", AuditEvent.entity_id == str(segment_id))
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [action for action, _ in events] == ["create", "update", "delete"]
    assert events[0].changes["fields"] == {"from": None, "to": ["daysPastDue"]}
    assert events[1].changes == {
        "name": {"from": "Overdue", "to": "Overdue east"},
        "shared": {"from": False, "to": True},
    }
