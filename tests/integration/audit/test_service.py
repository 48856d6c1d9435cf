"""Recording, hashing and listing audit events; the chain under 200 concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from tenantcrm.audit.models import AuditChainHead, AuditEvent
from tenantcrm.audit.service import diff, list_events, record, to_jsonable, verify
from tenantcrm.auth.models import Team
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, principal_of
from tests.integration.audit.helpers import seed_events

# --- pure functions ---


def test_to_jsonable_turns_money_dates_and_ids_into_stable_strings():
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "amount": Decimal("1.10"),
        "rate": Decimal("0.043500"),
        "when": datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=UTC),
        "day": date(2024, 5, 1),
        "id": uid,
        "score": 1e20,
        "tags": {"b", "a"},
        "pair": (1, None, True),
        7: "int key",
        "nul": "a\x00b",
    }
    assert to_jsonable(value) == {
        "amount": "1.10",
        "rate": "0.043500",
        "when": "2024-05-01T08:30:00.123456+00:00",
        "day": "2024-05-01",
        "id": str(uid),
        "score": "1e+20",
        "tags": ["a", "b"],
        "pair": [1, None, True],
        "7": "int key",
        "nul": "a\ufffdb",
    }
    with pytest.raises(TypeError):
        to_jsonable({"x": object()})


def test_diff_keeps_changed_fields_only():
    before = {"name": "张三", "income": Decimal("1.10"), "status": "prospect", "vip": 1, "phone": "138"}
    after = {"name": "张三丰", "income": Decimal("1.1"), "status": "prospect", "vip": True, "email": "a@b.cc"}
    assert diff(before, after) == {
        "name": {"from": "张三", "to": "张三丰"},
        "vip": {"from": 1, "to": True},
        "phone": {"from": "138", "to": None},
        "email": {"from": None, "to": "a@b.cc"},
    }
    assert diff(before, after, redact={"phone", "email"})["phone"] == {"from": "[redacted]", "to": None}
    assert diff(before, before) == {}


# --- recording and verifying ---


async def test_record_then_verify_on_a_fresh_tenant(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    async with tenant_session(db, tenant) as session:
        assert (await verify(session)).length == 0
        assert (await verify(session)).intact
    admin = await principal_of(db, tenant, fresh_tenant.admin_email)
    async with tenant_session(db, tenant) as session:
        first = await record(
            session, actor=admin, action="create", entity_type="customer", entity_id="c1", changes={"a": 1}
        )
        second = await record(
            session,
            actor=None,
            actor_label="system:cli",
            action="export",
            entity_type="customer",
            entity_id=None,
            changes={},
        )
    assert (first, second) == (1, 2)
    async with tenant_session(db, tenant) as session:
        result = await verify(session)
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
        head = await session.get(AuditChainHead, 1)
    assert result.intact and result.length == 2 and result.first_broken_seq is None
    assert events[0].actor_id == admin.user_id and events[0].actor == admin.email
    assert events[1].actor_id is None and events[1].actor == "system:cli"
    assert events[0].prev_hash == b"" and events[1].prev_hash == events[0].hash
    assert len(events[1].hash) == 32 and head.seq == 2 and head.hash == events[1].hash


async def test_a_rolled_back_write_leaves_no_event_and_no_gap(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 2)
    with pytest.raises(RuntimeError):
        async with tenant_session(db, tenant) as session:
            await record(
                session,
                actor=None,
                actor_label="x",
                action="delete",
                entity_type="t",
                entity_id="1",
                changes={},
            )
            raise RuntimeError("the write failed")
    assert await seed_events(db, tenant, 1) == [3]
    async with tenant_session(db, tenant) as session:
        assert (await verify(session)).length == 3 and (await verify(session)).intact


async def test_stored_changes_and_time_give_back_exactly_what_was_hashed(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    uid = uuid.uuid4()
    changes = {
        "amount": {"from": Decimal("1.10"), "to": Decimal("1000000.00")},
        "name": {"from": "张三", "to": '李四 \u2028 "quoted" \\ back'},
        "nested": {"z": {"b": [3, 2, 1], "a": {"due": date(2025, 2, 28), "owner": uid}}, "a": None},
        "big": 12345678901234567890123,
        "ratio": 0.1,
        "huge": 1e300,
    }
    async with tenant_session(db, tenant) as session:
        await record(
            session,
            actor=None,
            actor_label="系统",
            action="update",
            entity_type="loan",
            entity_id="L-1",
            changes=changes,
        )
    async with tenant_session(db, tenant) as session:
        stored = await session.scalar(select(AuditEvent).where(AuditEvent.seq == 1))
        assert (await verify(session)).intact
    assert stored.changes == to_jsonable(changes)
    assert stored.changes["amount"]["from"] == "1.10"
    assert stored.changes["nested"]["z"]["a"] == {"due": "2025-02-28", "owner": str(uid)}
    assert stored.at.tzinfo is not None and abs(datetime.now(UTC) - stored.at) < timedelta(minutes=1)


async def test_two_hundred_concurrent_audited_writes_leave_one_unbroken_chain(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    run = uuid.uuid4().hex[:6]

    async def audited_write(n: int, fail: bool) -> int:
        async with tenant_session(db, tenant) as session:
            team = Team(name=f"team-{run}-{n}")
            session.add(team)
            await session.flush()
            seq = await record(
                session,
                actor=None,
                actor_label=f"worker-{n}",
                action="create",
                entity_type="team",
                entity_id=str(team.id),
                changes={"name": {"from": None, "to": team.name}},
            )
            if fail:
                raise RuntimeError("rolled back after recording")
            return seq

    committed = [audited_write(n, False) for n in range(200)]
    rolled_back = [audited_write(1000 + n, True) for n in range(20)]
    tasks = committed[:100] + rolled_back + committed[100:]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    seqs = [o for o in outcomes if isinstance(o, int)]
    assert len(seqs) == 200 and sum(isinstance(o, RuntimeError) for o in outcomes) == 20

    async with tenant_session(db, tenant) as session:
        result = await verify(session, batch_size=37)  # several batches, boundaries mid-chain
        stored = (await session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq))).all()
        teams = await session.scalar(
            select(func.count()).select_from(Team).where(Team.name.like(f"team-{run}-%"))
        )
    assert result.intact and result.length == 200
    assert list(stored) == list(range(1, 201))
    assert sorted(seqs) == list(range(1, 201))
    assert teams == 200


# --- listing ---


async def test_list_events_needs_audit_read(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 1)
    viewer = await principal_of(db, tenant, await add_user(db, tenant, "viewer"))
    auditor = await principal_of(db, tenant, await add_user(db, tenant, "auditor"))
    admin = await principal_of(db, tenant, fresh_tenant.admin_email)
    async with tenant_session(db, tenant) as session:
        with pytest.raises(PermissionDenied):
            await list_events(session, viewer)
        assert len((await list_events(session, auditor)).events) == 1
        assert len((await list_events(session, admin)).events) == 1


async def test_list_events_filters_and_pages_newest_first(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    admin = await principal_of(db, tenant, fresh_tenant.admin_email)
    async with tenant_session(db, tenant) as session:
        for n in range(5):
            await record(
                session,
                actor=admin,
                action="update",
                entity_type="customer",
                entity_id=f"c{n}",
                changes={"n": n},
            )
        for n in range(3):
            await record(
                session,
                actor=None,
                actor_label="system:retention",
                action="delete",
                entity_type="interaction",
                entity_id=f"i{n}",
                changes={},
            )
    async with tenant_session(db, tenant) as session:
        everything = await list_events(session, admin)
        assert [e.seq for e in everything.events] == [8, 7, 6, 5, 4, 3, 2, 1]
        assert not everything.has_next_page

        page1 = await list_events(session, admin, first=3)
        page2 = await list_events(session, admin, first=3, after_seq=page1.end_cursor)
        page3 = await list_events(session, admin, first=3, after_seq=page2.end_cursor)
        assert [e.seq for e in page1.events + page2.events + page3.events] == [8, 7, 6, 5, 4, 3, 2, 1]
        assert page1.has_next_page and page2.has_next_page and not page3.has_next_page

        by_email = await list_events(session, admin, actor=admin.email.upper())
        by_id = await list_events(session, admin, actor=str(admin.user_id))
        system = await list_events(session, admin, actor="system:retention")
        assert [e.seq for e in by_email.events] == [e.seq for e in by_id.events] == [5, 4, 3, 2, 1]
        assert [e.seq for e in system.events] == [8, 7, 6]
        assert [e.seq for e in (await list_events(session, admin, action="delete")).events] == [8, 7, 6]
        only = await list_events(session, admin, entity_type="customer", entity_id="c2")
        assert [e.seq for e in only.events] == [3]
        assert (await list_events(session, admin, action="export")).events == []

        at = {e.seq: e.at for e in everything.events}
        window = await list_events(session, admin, since=at[3], until=at[6])
        assert [e.seq for e in window.events] == [5, 4, 3]
        with pytest.raises(ValueError):
            await list_events(session, admin, since=datetime(2024, 1, 1))  # naive: ambiguous


async def test_audit_events_of_one_tenant_are_not_another_tenants(db, fresh_tenant, tenant_b):
    await seed_events(db, fresh_tenant.tenant, 2)
    async with tenant_session(db, tenant_b.tenant) as session:
        own = await session.scalar(text("SELECT count(*) FROM audit_events WHERE actor = 'system:test'"))
    assert own == 0


async def test_customer_and_access_writes_are_audited(db, fresh_tenant):
    from tenantcrm.audit.service import list_events, verify
    from tenantcrm.auth.admin_service import AccessAdminService
    from tenantcrm.customers.service import CustomerService
    from tenantcrm.tenancy.session import tenant_session
    from tests.conftest import principal_of

    admin = await principal_of(db, fresh_tenant.tenant, fresh_tenant.admin_email)
    async with tenant_session(db, fresh_tenant.tenant) as session:
        customers = CustomerService(session, admin)
        customer = await customers.create_customer({"name": "审计 客户", "monthly_income": "100"})
        await customers.update_customer(customer.id, {"monthly_income": "250.50"})
        await customers.update_customer(customer.id, {"monthly_income": "250.5"})  # no change: no event
        await AccessAdminService(session, admin).create_team("风控部")
    async with tenant_session(db, fresh_tenant.tenant) as session:
        page = await list_events(session, admin)
        assert (await verify(session)).intact
    actions = [(e.action, e.entity_type) for e in page.events]
    assert actions[:3] == [("create", "team"), ("update", "customer"), ("create", "customer")]
    update = page.events[1]
    assert update.changes == {"monthly_income": {"from": "100.00", "to": "250.50"}}
    assert update.actor == fresh_tenant.admin_email
