"""The audit log and the PII access log pages, for users with audit.read only."""

from __future__ import annotations

import pytest

from tenantcrm.customers.service import CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in


@pytest.fixture
async def logged(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "auditpage")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    ring = master_key_ring(settings)
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(
            session,
            admin,
            cipher_source(db, ring, fixture.tenant),
        )
        customer = await service.create_customer({"name": "审计页客户", "phone": "13912345678"})
        await service.reveal_pii(customer.id, ["phone"], purpose="电话回访核实", channel="web")
    return fixture, customer


async def test_an_auditor_reads_both_logs_with_filters(client, db, logged):
    fixture, customer = logged
    email = await add_user(db, fixture.tenant, "auditor")
    await web_sign_in(client, fixture.slug, email)
    audit = await client.get(f"/t/{fixture.slug}/settings/audit")
    assert audit.status_code == 200 and "reveal" in audit.text and "sign_in" in audit.text
    assert "13912345678" not in audit.text  # the event names the field, never the value
    only_reveals = await client.get(f"/t/{fixture.slug}/settings/audit?action=reveal")
    assert "<td>reveal</td>" in only_reveals.text and "<td>create</td>" not in only_reveals.text
    access = await client.get(f"/t/{fixture.slug}/settings/pii-access?customer={customer.id}")
    assert access.status_code == 200 and "电话回访核实" in access.text and fixture.admin_email in access.text
    home = await client.get(f"/t/{fixture.slug}/settings", follow_redirects=False)
    assert home.headers["location"] == f"/t/{fixture.slug}/settings/audit"


async def test_users_without_audit_read_are_refused(client, db, logged):
    fixture, _ = logged
    email = await add_user(db, fixture.tenant, "manager")
    await web_sign_in(client, fixture.slug, email)
    for path in ("audit", "pii-access"):
        assert (await client.get(f"/t/{fixture.slug}/settings/{path}")).status_code == 403
