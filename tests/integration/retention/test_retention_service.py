"""RetentionService: policies, the dry run against the run, legal hold, live loans, and
anonymisation leaving no personal data in any column of the tenant schema."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from tenantcrm.audit.models import AuditEvent
from tenantcrm.audit.service import verify
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.retention.models import RetentionPolicy, RetentionRun
from tenantcrm.retention.service import (
    CATEGORIES,
    PLACEHOLDER,
    RetentionService,
)
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of
from tests.integration.retention.helpers import (
    AS_OF,
    add_expired_session,
    enable_all,
    fingerprint,
    seed_customer,
)


@pytest.fixture
async def bank(lifecycle, db):
    fixture = await make_tenant(lifecycle, "keep")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    return fixture.tenant, admin


async def _plan(db, tenant, admin):
    async with tenant_session(db, tenant) as session:
        return await RetentionService(session, admin).plan(AS_OF)


async def _run(db, tenant, admin):
    async with tenant_session(db, tenant) as session:
        return await RetentionService(session, admin).run(AS_OF)


async def _scan(db, tenant, texts: list[str], blobs: list[bytes]) -> list[tuple[str, ...]]:
    """Every text, varchar, array, jsonb and bytea column of every table that holds one of the values."""
    async with tenant_session(db, tenant) as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = current_schema()"
                    " AND data_type IN ('text', 'character varying', 'jsonb', 'bytea', 'ARRAY')"
                )
            )
        ).all()
        # The audit chain too: it records that identifying fields changed, never their values.
        scanned = list(columns)
        assert "audit_events" in {c.table_name for c in scanned}
        assert len({c.table_name for c in scanned}) > 20
        found: list[tuple[str, ...]] = []
        for table, column, data_type in scanned:
            if data_type == "bytea":
                for blob in blobs:
                    hit = await session.scalar(
                        text(f'SELECT count(*) FROM "{table}" WHERE position(:b IN "{column}") > 0'),
                        {"b": blob},
                    )
                    if hit:
                        found.append((table, column))
                continue
            for value in texts:
                hit = await session.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE :v'),
                    {"v": f"%{value}%"},
                )
                if hit:
                    found.append((table, column, value))
    return found


async def test_policies_are_seeded_disabled_and_a_disabled_run_touches_nothing(db, settings, bank):
    tenant, admin = bank
    await seed_customer(db, settings, tenant, admin)
    async with tenant_session(db, tenant) as session:
        policies = await RetentionService(session, admin).policies()
    assert [p.category for p in policies] == list(CATEGORIES)
    assert not any(p.enabled for p in policies)
    before = await fingerprint(db, tenant)
    result = await _run(db, tenant, admin)
    assert result.counts() == {} and result.skipped == list(CATEGORIES)
    after = await fingerprint(db, tenant)
    changed = {t for t in before if before[t] != after[t]}
    assert changed == {"retention_runs", "audit_events", "audit_chain_head"}


async def test_dry_run_counts_equal_the_run_and_the_dry_run_changes_nothing(db, settings, bank):
    tenant, admin = bank
    prospect = await seed_customer(db, settings, tenant, admin)  # deleted with all it has
    closed = await seed_customer(db, settings, tenant, admin, status="closed", loan="settled")
    current = await seed_customer(db, settings, tenant, admin, status="active", aged=False)
    await add_expired_session(db, tenant, admin.user_id, expired_days_ago=400)
    await add_expired_session(db, tenant, admin.user_id, expired_days_ago=3)
    await enable_all(db, tenant, admin, action="anonymise", prospects="delete")

    before = await fingerprint(db, tenant)
    planned = await _plan(db, tenant, admin)
    assert await fingerprint(db, tenant) == before
    expected = {
        "prospects": 1,
        "closed_customers": 1,
        # the prospect's interaction and complaint go with it; the closed customer's are
        # anonymised with it; the current customer's are recent: nothing left for these two
        "interactions": 0,
        "complaints": 0,
        "pii_access_log": 2,  # the prospect's and the closed customer's reveal (kept after erasure)
        "sessions": 1,
        "audit_events": 0,  # every event is younger than a year
    }
    assert planned.counts() == expected

    done = await _run(db, tenant, admin)
    assert done.counts() == planned.counts()
    assert (await _plan(db, tenant, admin)).counts() == dict.fromkeys(CATEGORIES, 0)

    async with tenant_session(db, tenant) as session:
        assert await session.get(Customer, prospect.id) is None
        anonymised = await session.get(Customer, closed.id)
        assert anonymised.anonymised_at is not None and anonymised.name.startswith("已匿名 · ")
        assert (await session.get(Customer, current.id)).name == current.values["name"]
        run = await session.get(RetentionRun, done.run_id)
        event = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.entity_type == "retention", AuditEvent.entity_id == str(run.id)
            )
        )
        intact = (await verify(session)).intact
    assert run.dry_run is False and run.trigger == "manual" and run.actor == admin.email
    assert {c: v["count"] for c, v in run.counts.items()} == expected
    assert event.action == "retention_run" and event.changes["counts"] == run.counts
    assert intact


async def test_legal_hold_exempts_the_customer_and_everything_linked(db, settings, bank):
    tenant, admin = bank
    held = await seed_customer(db, settings, tenant, admin, legal_hold=True)
    held_closed = await seed_customer(db, settings, tenant, admin, status="closed", loan="settled")
    async with tenant_session(db, tenant) as session:
        await RetentionService(session, admin).set_legal_hold(held_closed.id, True)
    await enable_all(db, tenant, admin, action="delete")
    before = await fingerprint(db, tenant)
    planned = await _plan(db, tenant, admin)
    assert planned.counts() == dict.fromkeys(CATEGORIES, 0)
    await _run(db, tenant, admin)
    after = await fingerprint(db, tenant)
    assert {t for t in before if before[t] != after[t]} == {
        "retention_runs",
        "audit_events",
        "audit_chain_head",
    }
    async with tenant_session(db, tenant) as session:
        for seeded in (held, held_closed):
            assert (await session.get(Customer, seeded.id)).name == seeded.values["name"]


async def test_customers_with_live_loans_are_never_deleted_or_anonymised(db, settings, bank):
    tenant, admin = bank
    # Marked closed by mistake, yet its loan is live: neither category may take it.
    live = await seed_customer(db, settings, tenant, admin, status="closed", loan="active")
    for action in ("delete", "anonymise"):
        await enable_all(db, tenant, admin, action=action, interactions="anonymise", complaints="anonymise")
        counts = (await _run(db, tenant, admin)).counts()
        assert counts["prospects"] == counts["closed_customers"] == 0
    async with tenant_session(db, tenant) as session:
        customer = await session.get(Customer, live.id)
        loans = await session.scalar(
            text("SELECT count(*) FROM loans WHERE customer_id = :id"), {"id": live.id}
        )
    assert customer.name == live.values["name"] and customer.national_id_enc is not None
    assert customer.anonymised_at is None and loans == 1


async def test_deleting_a_customer_leaves_no_row_that_names_it(db, settings, bank):
    tenant, admin = bank
    gone = await seed_customer(db, settings, tenant, admin, loan="settled")
    async with tenant_session(db, tenant) as session:
        await session.execute(text("UPDATE customers SET status = 'settled' WHERE id = :id"), {"id": gone.id})
    await enable_all(db, tenant, admin, action="delete", disabled=("pii_access_log",))
    assert (await _run(db, tenant, admin)).counts()["closed_customers"] == 1
    async with tenant_session(db, tenant) as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND column_name = 'customer_id'"
                )
            )
        ).scalars()
        left = {}
        for table in columns:
            left[table] = await session.scalar(
                text(f'SELECT count(*) FROM "{table}" WHERE customer_id = :id'), {"id": gone.id}
            )
    # The PII access log keeps who looked at an erased customer (its own policy removes it).
    assert {t: n for t, n in left.items() if n} == {"pii_access_log": 1}


async def test_anonymisation_leaves_no_personal_data_in_any_column(db, settings, bank):
    tenant, admin = bank
    seeded = [
        await seed_customer(db, settings, tenant, admin, status="settled", loan="settled"),
        await seed_customer(db, settings, tenant, admin, status="prospect"),
    ]
    async with tenant_session(db, tenant) as session:
        rows = (
            await session.execute(
                select(
                    Customer.id,
                    Customer.national_id_masked,
                    Customer.phone_masked,
                    Customer.email_masked,
                    Customer.address_masked,
                    Customer.national_id_bidx,
                    Customer.phone_bidx,
                    Customer.national_id_enc,
                    Customer.phone_enc,
                    Customer.email_enc,
                    Customer.address_enc,
                ).where(Customer.id.in_([s.id for s in seeded]))
            )
        ).all()
    texts = [v for s in seeded for v in s.values.values()] + [v for row in rows for v in row[1:5]]
    blobs = [bytes(v) for row in rows for v in row[5:]]
    assert len(texts) == 26 and len(blobs) == 12

    before = await _scan(db, tenant, texts, blobs)
    # The scan sees every kind of value before (so it can fail): names, masked forms, free
    # text, ciphertexts and blind indexes.
    assert {(hit[0], hit[1]) for hit in before} >= {
        ("customers", "name"),
        ("customers", "phone_masked"),
        ("customers", "national_id_bidx"),
        ("customers", "address_enc"),
        ("interactions", "summary"),
        ("complaints", "content"),
        ("complaints", "resolution"),
        ("import_rows", "values"),
        ("import_rows", "notes"),
        ("import_rows", "national_id_bidx"),
    }

    await enable_all(db, tenant, admin, action="anonymise")
    counts = (await _run(db, tenant, admin)).counts()
    assert counts["prospects"] == 1 and counts["closed_customers"] == 1
    assert await _scan(db, tenant, texts, blobs) == []

    async with tenant_session(db, tenant) as session:
        customers = (
            await session.execute(
                select(Customer.name, Customer.monthly_income, Customer.status).where(
                    Customer.id.in_([s.id for s in seeded])
                )
            )
        ).all()
        loan_amount = await session.scalar(
            text("SELECT sum(amount) FROM loans WHERE customer_id = :id"), {"id": seeded[0].id}
        )
        summaries = (
            (
                await session.execute(
                    text("SELECT DISTINCT summary FROM interactions WHERE customer_id = ANY(:ids)"),
                    {"ids": [s.id for s in seeded]},
                )
            )
            .scalars()
            .all()
        )
    assert sorted(c.status for c in customers) == ["prospect", "settled"]  # statistics kept
    assert loan_amount == 50000 and summaries == [PLACEHOLDER]


async def test_policies_refuse_bad_periods_and_actions_and_write_nothing(db, bank):
    tenant, admin = bank
    rows = [
        {"category": "prospects", "period_days": "29", "action": "delete", "enabled": "on"},
        {"category": "sessions", "period_days": "60", "action": "anonymise", "enabled": "on"},
        {"category": "interactions", "period_days": "365", "action": "shred"},
        {"category": "complaints", "period_days": "400", "action": "delete", "enabled": "on"},
    ]
    async with tenant_session(db, tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await RetentionService(session, admin).update_policies(rows)
    assert {e.field for e in refused.value.errors} == {
        "prospects.period_days",
        "sessions.action",
        "interactions.action",
    }
    async with tenant_session(db, tenant) as session:
        complaints = await session.get(RetentionPolicy, "complaints")
        changes = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_type == "retention_policies")
        )
    assert (complaints.period_days, complaints.enabled, changes) == (1825, False, 0)


async def test_everything_needs_admin_retention(db, bank):
    tenant, admin = bank
    officer = await principal_of(db, tenant, await add_user(db, tenant, "risk_officer"))
    async with tenant_session(db, tenant) as session:
        service = RetentionService(session, officer)
        for call in (
            service.policies(),
            service.plan(AS_OF),
            service.run(AS_OF),
            service.recent_runs(),
            service.update_policies([]),
            service.set_legal_hold(admin.user_id, True),
        ):
            with pytest.raises(PermissionDenied):
                await call


async def test_legal_hold_is_audited_and_an_unknown_customer_is_not_found(db, settings, bank):
    tenant, admin = bank
    seeded = await seed_customer(db, settings, tenant, admin, aged=False)
    async with tenant_session(db, tenant) as session:
        service = RetentionService(session, admin)
        await service.set_legal_hold(seeded.id, True)
        await service.set_legal_hold(seeded.id, True)  # no change, no event
        await service.set_legal_hold(seeded.id, False)
        with pytest.raises(CustomerNotFound):
            await service.set_legal_hold("not-a-uuid", True)
    async with tenant_session(db, tenant) as session:
        events = (
            await session.scalars(
                select(AuditEvent.changes)
                .where(AuditEvent.entity_id == str(seeded.id), AuditEvent.changes.has_key("legal_hold"))
                .order_by(AuditEvent.seq)
            )
        ).all()
        customer = await session.get(Customer, seeded.id)
    assert events == [
        {"legal_hold": {"from": False, "to": True}},
        {"legal_hold": {"from": True, "to": False}},
    ]
    assert customer.legal_hold is False
