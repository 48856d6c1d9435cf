"""Support access: granted and revoked by a tenant admin, time-limited, audited on both sides."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tenantcrm.customers.service import CustomerService
from tenantcrm.operators import support_service
from tenantcrm.operators.support_service import SupportAccessService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_for
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.console.helpers import console_sign_in, csrf, events, make_operator


@pytest.fixture
async def org(lifecycle):
    """A tenant of one test alone: grants are per tenant."""
    return await make_tenant(lifecycle, "support")


@pytest.fixture
async def operator(db, settings):
    return await make_operator(db, settings)


@pytest.fixture
async def console(app, operator):
    """A second browser: the operator's."""
    import httpx

    transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{secrets.randbelow(250) + 1}", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        await console_sign_in(browser, operator)
        yield browser


async def _audit(db, tenant, entity_type: str = "support_access") -> list[dict]:
    async with tenant_session(db, tenant) as session:
        rows = await session.execute(
            text(
                "SELECT actor, actor_id, action, entity_id, changes FROM audit_events"
                " WHERE entity_type = :t ORDER BY seq"
            ),
            {"t": entity_type},
        )
        return [dict(row._mapping) for row in rows]


async def _grant(client, slug: str, hours: str = "24", reason: str = "导入失败，请协助排查"):
    await client.get(f"/t/{slug}/settings/support")
    return await client.post(
        f"/t/{slug}/settings/support",
        data={"hours": hours, "reason": reason, "_csrf_token": client.cookies["csrftoken"]},
    )


async def test_admin_grants_and_the_operator_enters_read_only_without_pii(
    client, console, db, settings, org, operator
):
    admin = await principal_of(db, org.tenant, org.admin_email)
    secret_name = f"机密客户{secrets.token_hex(3)}"
    async with tenant_session(db, org.tenant) as session:
        await CustomerService(
            session, admin, lambda need_version=None: cipher_for(db, master_key_ring(settings), org.tenant)
        ).create_customer({"kind": "individual", "name": secret_name, "phone": "13912345678"})

    # Without a grant the operator is refused, and the attempt is logged.
    refused = await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    assert refused.status_code == 403
    assert [e["action"] for e in await events(db, tenant_slug=org.slug)] == ["support.refused"]

    assert (await web_sign_in(client, org.slug, org.admin_email)).status_code == 303
    granted = await _grant(client, org.slug)
    assert granted.status_code == 303 and granted.headers["location"].endswith("?done=granted")
    page = await client.get(f"/t/{org.slug}/settings/support")
    assert 'data-grant="live"' in page.text

    tenant_page = await console.get(f"/platform/tenants/{org.slug}")
    assert 'id="support-form"' in tenant_page.text and "导入失败" in tenant_page.text
    view = await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    assert view.status_code == 200
    assert 'id="support-roles"' in view.text and "loan_officer" in view.text
    for private in (secret_name, "13912345678", "139****5678", org.admin_email):
        assert private not in view.text

    # Audited on both sides: the tenant's chain and the operator event log.
    audit = await _audit(db, org.tenant)
    assert [a["action"] for a in audit] == ["grant", "support_view"]
    assert audit[0]["actor_id"] == admin.user_id and audit[0]["changes"]["hours"] == 24
    assert "导入失败" not in str(audit[0]["changes"])  # free text stays out of the chain
    assert audit[1]["actor"] == f"platform support: {operator.email}" and audit[1]["actor_id"] is None
    logged = await events(db, tenant_slug=org.slug)
    assert [e["action"] for e in logged] == ["support.refused", "support.grant", "support.view"]
    assert logged[1]["actor"] == f"tenant-user:{admin.user_id}" and logged[1]["operator_id"] is None
    assert logged[2]["operator_id"] is not None
    assert org.admin_email not in str(logged)


async def test_revoking_ends_access_at_once(client, console, db, org):
    await web_sign_in(client, org.slug, org.admin_email)
    await _grant(client, org.slug, hours="1")
    revoked = await client.post(f"/t/{org.slug}/settings/support/revoke", data={"_csrf_token": csrf(client)})
    assert revoked.status_code == 303
    view = await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    assert view.status_code == 403
    assert [a["action"] for a in await _audit(db, org.tenant)] == ["grant", "revoke"]
    assert [e["action"] for e in await events(db, tenant_slug=org.slug)] == [
        "support.grant",
        "support.revoke",
        "support.refused",
    ]
    page = await client.get(f"/t/{org.slug}/settings/support")
    assert 'data-grant="revoked"' in page.text and 'id="grant-form"' in page.text


async def test_a_grant_expires_by_itself(client, console, db, org):
    await web_sign_in(client, org.slug, org.admin_email)
    await _grant(client, org.slug, hours="1")
    assert (
        await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    ).status_code == 200
    async with db.admin_engine.begin() as conn:  # two hours later, as far as the grant knows
        await conn.execute(
            text(
                "UPDATE platform.support_grants SET starts_at = starts_at - interval '2 hours',"
                " ends_at = ends_at - interval '2 hours' WHERE tenant_id = :t"
            ),
            {"t": org.tenant.id},
        )
    assert (
        await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    ).status_code == 403
    page = await client.get(f"/t/{org.slug}/settings/support")
    assert 'data-grant="expired"' in page.text and 'id="grant-form"' in page.text


async def test_expiry_is_the_database_clock_not_the_app_hosts(client, console, db, org, monkeypatch):
    """An app host whose clock runs slow must not stretch a grant past the end the tenant chose."""
    await web_sign_in(client, org.slug, org.admin_email)
    await _grant(client, org.slug, hours="1")
    async with db.admin_engine.begin() as conn:  # ended a minute ago by the database's clock
        await conn.execute(
            text(
                "UPDATE platform.support_grants SET starts_at = now() - interval '4 hours',"
                " ends_at = now() - interval '1 minute' WHERE tenant_id = :t"
            ),
            {"t": org.tenant.id},
        )

    class SlowClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) - timedelta(hours=3)

    monkeypatch.setattr(support_service, "datetime", SlowClock)
    assert (
        await console.post(f"/platform/tenants/{org.slug}/support", data={"_csrf_token": csrf(console)})
    ).status_code == 403


async def test_bad_grants_are_refused_and_leave_no_trace(client, db, org):
    await web_sign_in(client, org.slug, org.admin_email)
    for hours, reason in (("73", "x"), ("0", "x"), ("abc", "x"), ("24", "   "), ("24", "长" * 501)):
        response = await _grant(client, org.slug, hours=hours, reason=reason)
        assert response.status_code == 422, (hours, reason)
    assert await _audit(db, org.tenant) == []
    assert await events(db, tenant_slug=org.slug) == []

    assert (await _grant(client, org.slug)).status_code == 303
    again = await _grant(client, org.slug, hours="48")
    assert again.status_code == 422  # one open grant at a time
    # The refused second grant took its audit event back with it (savepoint).
    assert [a["action"] for a in await _audit(db, org.tenant)] == ["grant"]
    async with db.admin_engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT count(*) FROM platform.support_grants WHERE tenant_id = :t"),
                {"t": org.tenant.id},
            )
            == 1
        )


@pytest.mark.parametrize("role", ["manager", "viewer", "auditor"])
async def test_only_user_administrators_grant_support(client, db, org, role):
    email = await add_user(db, org.tenant, role)
    await web_sign_in(client, org.slug, email)
    assert (await client.get(f"/t/{org.slug}/settings/support")).status_code == 403
    response = await client.post(
        f"/t/{org.slug}/settings/support", data={"hours": "24", "reason": "x", "_csrf_token": csrf(client)}
    )
    assert response.status_code == 403
    principal = await principal_of(db, org.tenant, email)
    async with tenant_session(db, org.tenant) as session:
        with pytest.raises(Exception, match=r"missing permission admin\.users"):
            await SupportAccessService(session, principal, db).revoke()
    assert await events(db, tenant_slug=org.slug) == []


async def test_a_grant_covers_its_own_tenant_only(client, console, db, org, lifecycle):
    other = await make_tenant(lifecycle, "other")
    await web_sign_in(client, org.slug, org.admin_email)
    await _grant(client, org.slug)
    refused = await console.post(
        f"/platform/tenants/{other.slug}/support", data={"_csrf_token": csrf(console)}
    )
    assert refused.status_code == 403
