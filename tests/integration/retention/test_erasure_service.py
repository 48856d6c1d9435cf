"""Erasure requests: request, review by someone else, execution that deletes or anonymises the
customer with everything linked, and a certificate of counts; refusals write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from tenantcrm.audit.models import AuditEvent
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.retention.erasure_service import ErasureNotFound, ErasureService
from tenantcrm.retention.models import ErasureRequest
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of
from tests.integration.retention.helpers import seed_customer

REQUEST = {"basis": "consent_withdrawn", "requester": "data_subject", "action": "delete"}


@pytest.fixture
async def office(lifecycle, db):
    fixture = await make_tenant(lifecycle, "erase")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    second = await principal_of(db, fixture.tenant, await add_user(db, fixture.tenant, "admin"))
    return fixture.tenant, admin, second


async def _step(db, tenant, principal, name, *args):
    async with tenant_session(db, tenant) as session:
        return await getattr(ErasureService(session, principal), name)(*args)


async def test_request_review_execute_deletes_everything_and_certifies_it(db, settings, office):
    tenant, admin, second = office
    seeded = await seed_customer(db, settings, tenant, admin, status="settled", loan="settled", aged=False)
    requested = await _step(db, tenant, admin, "request", seeded.id, REQUEST)
    assert requested.status == "requested" and requested.customer_ref == str(seeded.id)[:8]
    with pytest.raises(InvalidInput) as same:
        await _step(db, tenant, admin, "review", requested.id, {"decision": "approve"})
    assert same.value.errors[0].code == "same_person"
    with pytest.raises(InvalidInput) as early:
        await _step(db, tenant, second, "execute", requested.id)
    assert early.value.errors[0].code == "invalid_state"
    approved = await _step(db, tenant, second, "review", requested.id, {"decision": "approve"})
    assert approved.status == "approved" and approved.reviewed_by == second.user_id

    done = await _step(db, tenant, admin, "execute", requested.id)
    certificate = done.certificate
    assert done.status == "executed" and certificate["executed_by"] == admin.email
    assert certificate["records"] == {
        "loans": 1,
        "collateral": 0,
        "interactions": 1,
        "follow_ups": 0,
        "complaints": 1,
        "risk_cases": 0,
        "warnings": 0,
        "import_rows": 1,
    }
    assert certificate["kept"] == {"pii_access_log": 1, "audit_events": "redacted_until_retention"}
    for value in seeded.values.values():
        assert value not in str(certificate)
    async with tenant_session(db, tenant) as session:
        assert await session.get(Customer, seeded.id) is None
        for table in ("loans", "interactions", "complaints", "import_rows"):
            left = await session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE customer_id = :id"), {"id": seeded.id}
            )
            assert left == 0, table
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.entity_type == "erasure_request", AuditEvent.entity_id == str(done.id))
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert actions == ["create", "update", "erase"]
    with pytest.raises(InvalidInput):
        await _step(db, tenant, admin, "execute", requested.id)  # once only


async def test_anonymising_keeps_the_customer_without_its_personal_data(db, settings, office):
    tenant, admin, second = office
    seeded = await seed_customer(db, settings, tenant, admin, aged=False)
    requested = await _step(db, tenant, admin, "request", seeded.id, {**REQUEST, "action": "anonymise"})
    await _step(db, tenant, second, "review", requested.id, {"decision": "approve", "note": "核实身份"})
    await _step(db, tenant, second, "execute", requested.id)
    async with tenant_session(db, tenant) as session:
        customer = await session.get(Customer, seeded.id)
    assert customer.anonymised_at is not None and customer.name != seeded.values["name"]
    assert (customer.national_id_enc, customer.national_id_bidx, customer.phone_masked) == (None, None, None)


async def test_legal_hold_and_live_loans_refuse_execution_and_change_nothing(db, settings, office):
    tenant, admin, second = office
    held = await seed_customer(db, settings, tenant, admin, legal_hold=True, aged=False)
    live = await seed_customer(db, settings, tenant, admin, loan="active", aged=False)
    for seeded, code in ((held, "legal_hold"), (live, "live_loan")):
        requested = await _step(db, tenant, admin, "request", seeded.id, REQUEST)
        await _step(db, tenant, second, "review", requested.id, {"decision": "approve"})
        with pytest.raises(InvalidInput) as refused:
            await _step(db, tenant, second, "execute", requested.id)
        assert refused.value.errors[0].code == code
        async with tenant_session(db, tenant) as session:
            assert (await session.get(Customer, seeded.id)).name == seeded.values["name"]
            assert (await session.get(ErasureRequest, requested.id)).status == "approved"


async def test_bad_requests_and_rejections_are_refused_and_write_nothing(db, settings, office):
    tenant, admin, second = office
    seeded = await seed_customer(db, settings, tenant, admin, aged=False)
    with pytest.raises(InvalidInput) as bad:
        await _step(
            db, tenant, admin, "request", seeded.id, {"basis": "whim", "requester": "x", "action": "burn"}
        )
    assert {e.field for e in bad.value.errors} == {"basis", "requester", "action"}
    with pytest.raises(CustomerNotFound):
        await _step(db, tenant, admin, "request", "00000000-0000-0000-0000-000000000000", REQUEST)
    with pytest.raises(InvalidInput):
        await _step(db, tenant, admin, "request", "not-an-id", REQUEST)
    requested = await _step(db, tenant, admin, "request", seeded.id, REQUEST)
    with pytest.raises(InvalidInput) as twice:
        await _step(db, tenant, admin, "request", seeded.id, REQUEST)
    assert twice.value.errors[0].code == "duplicate"
    with pytest.raises(InvalidInput) as no_reason:
        await _step(db, tenant, second, "review", requested.id, {"decision": "reject", "note": " "})
    assert no_reason.value.errors[0].field == "note"
    rejected = await _step(
        db, tenant, second, "review", requested.id, {"decision": "reject", "note": "仍有纠纷"}
    )
    assert rejected.status == "rejected"
    with pytest.raises(ErasureNotFound):
        await _step(db, tenant, admin, "get", "00000000-0000-0000-0000-000000000000")
    async with tenant_session(db, tenant) as session:
        count = await session.scalar(select(func.count()).select_from(ErasureRequest))
    assert count == 1


async def test_every_step_needs_admin_retention(db, settings, office):
    tenant, admin, _ = office
    seeded = await seed_customer(db, settings, tenant, admin, aged=False)
    requested = await _step(db, tenant, admin, "request", seeded.id, REQUEST)
    manager = await principal_of(db, tenant, await add_user(db, tenant, "manager"))
    for name, args in (
        ("request", (seeded.id, REQUEST)),
        ("review", (requested.id, {"decision": "approve"})),
        ("execute", (requested.id,)),
        ("get", (requested.id,)),
        ("recent", ()),
    ):
        with pytest.raises(PermissionDenied):
            await _step(db, tenant, manager, name, *args)


async def test_a_request_is_seen_and_worked_only_within_record_scope(db, settings, office):
    """admin.retention with an `own` record scope: someone else's customer's request is not found."""
    from dataclasses import replace

    tenant, admin, second = office
    seeded = await seed_customer(db, settings, tenant, admin, status="settled", loan="settled", aged=False)
    requested = await _step(db, tenant, admin, "request", seeded.id, REQUEST)
    narrow = replace(second, record_scope="own")
    for name, args in (
        ("get", (requested.id,)),
        ("review", (requested.id, {"decision": "approve"})),
        ("execute", (requested.id,)),
    ):
        with pytest.raises(ErasureNotFound):
            await _step(db, tenant, narrow, name, *args)
    assert await _step(db, tenant, narrow, "recent") == []
    approved = await _step(db, tenant, second, "review", requested.id, {"decision": "approve"})
    assert approved.status == "approved"
    with pytest.raises(ErasureNotFound):
        await _step(db, tenant, narrow, "execute", requested.id)
    async with tenant_session(db, tenant) as session:
        assert await session.scalar(select(func.count()).where(Customer.id == seeded.id)) == 1
    done = await _step(db, tenant, admin, "execute", requested.id)
    assert done.status == "executed"
    certificate = await _step(db, tenant, narrow, "get", requested.id)  # the customer is gone: counts only
    assert certificate.certificate["records"]["loans"] == 1
