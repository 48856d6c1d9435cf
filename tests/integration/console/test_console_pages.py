"""The console's tenant pages: the list (figures, never PII), provisioning, suspend, resume, delete."""

from __future__ import annotations

import re
import secrets

import pytest
from sqlalchemy import text

from tenantcrm.customers.service import CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_for
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant, principal_of, web_sign_in
from tests.integration.console.helpers import console_sign_in, csrf, events, make_operator
from tests.integration.tenancy.test_cli import tenant_row


@pytest.fixture
async def operator(db, settings):
    return await make_operator(db, settings)


@pytest.fixture
async def console(client, operator):
    """The test client, signed in to the console."""
    await console_sign_in(client, operator)
    return client


async def test_the_list_shows_figures_and_never_personal_data(console, db, settings, lifecycle):
    org = await make_tenant(lifecycle, "figures")
    admin = await principal_of(db, org.tenant, org.admin_email)
    name = f"保密客户{secrets.token_hex(3)}"
    async with tenant_session(db, org.tenant) as session:
        service = CustomerService(
            session, admin, lambda need_version=None: cipher_for(db, master_key_ring(settings), org.tenant)
        )
        for number in range(3):
            await service.create_customer(
                {"kind": "individual", "name": f"{name}{number}", "phone": f"1381234567{number}"}
            )

    listing = await console.get("/platform/")
    assert listing.status_code == 200
    row = re.search(rf'<tr data-slug="{org.slug}">(.*?)</tr>', listing.text, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert "active" in cells[2]
    assert cells[3] == "standard"
    assert cells[4].strip().endswith(("KB", "MB"))  # the schema's size
    assert cells[5].strip() == "1" and cells[6].strip() == "3"  # users, customers
    assert migrations.head("tenant") in cells[7] and "behind" not in cells[7]

    detail = await console.get(f"/platform/tenants/{org.slug}")
    assert detail.status_code == 200
    assert 'data-count="customers">3<' in detail.text
    for page in (listing, detail):
        assert name not in page.text and "13812345670" not in page.text
        assert org.admin_email not in page.text


async def test_provision_suspend_resume_and_delete_from_the_console(console, client, db, operator):
    slug = f"console-{secrets.token_hex(3)}"
    await console.get("/platform/tenants/new")
    created = await console.post(
        "/platform/tenants/new",
        data={
            "slug": slug,
            "name": "控制台小贷",
            "admin_email": "Boss@Console.example",
            "_csrf_token": csrf(console),
        },
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    password = re.search(r'id="admin-password" class="secret" readonly value="([^"]+)"', created.text).group(
        1
    )
    assert (await tenant_row(db, slug)).status == "active"

    # The first admin signs in with the password shown once (same browser, its own cookie).
    login = await web_sign_in(client, slug, "boss@console.example", password)
    assert login.status_code == 303

    suspended = await console.post(f"/platform/tenants/{slug}/suspend", data={"_csrf_token": csrf(console)})
    assert suspended.status_code == 303 and (await tenant_row(db, slug)).status == "suspended"
    assert (await console.get(f"/t/{slug}/customers")).status_code == 403  # the tenant's users are out
    resumed = await console.post(f"/platform/tenants/{slug}/resume", data={"_csrf_token": csrf(console)})
    assert resumed.status_code == 303 and (await tenant_row(db, slug)).status == "active"

    refused = await console.post(
        f"/platform/tenants/{slug}/delete", data={"confirm": slug + "x", "_csrf_token": csrf(console)}
    )
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.text
    assert (await tenant_row(db, slug)) is not None
    deleted = await console.post(
        f"/platform/tenants/{slug}/delete",
        data={"confirm": slug, "_csrf_token": csrf(console)},
    )
    assert deleted.status_code == 303 and deleted.headers["location"] == "/platform/"
    assert (await tenant_row(db, slug)) is None
    async with db.admin_engine.connect() as conn:
        schemas = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't_%' AND nspname NOT IN"
                " (SELECT schema_name FROM platform.tenants)"
            )
        )
    assert schemas == 0

    logged = [e["action"] for e in await events(db, tenant_slug=slug)]
    assert logged == ["tenant.create", "tenant.suspend", "tenant.resume", "tenant.delete"]
    for event in await events(db, tenant_slug=slug):
        assert event["actor"] == operator.email and event["operator_id"] is not None
        assert "boss@console.example" not in str(event["details"])


async def test_provisioning_refuses_bad_input_and_writes_nothing(console, db, tenant_a):
    await console.get("/platform/tenants/new")
    bad = await console.post(
        "/platform/tenants/new",
        data={"slug": "Not A Slug", "name": " ", "admin_email": "nobody", "_csrf_token": csrf(console)},
    )
    assert bad.status_code == 422
    assert bad.text.count('aria-invalid="true"') == 3
    taken = await console.post(
        "/platform/tenants/new",
        data={"slug": tenant_a.slug, "name": "x", "admin_email": "a@b.example", "_csrf_token": csrf(console)},
    )
    assert taken.status_code == 422 and 'id="slug-error"' in taken.text
    assert (await tenant_row(db, "not-a-slug")) is None


async def test_console_forms_need_the_csrf_token(console, tenant_a, db):
    response = await console.post(f"/platform/tenants/{tenant_a.slug}/suspend", data={})
    assert response.status_code == 403
    assert (await tenant_row(db, tenant_a.slug)).status == "active"


async def test_an_unknown_tenant_is_not_found(console):
    assert (await console.get("/platform/tenants/no-such-tenant")).status_code == 404
    response = await console.post(
        "/platform/tenants/no-such-tenant/delete", data={"_csrf_token": csrf(console)}
    )
    assert response.status_code == 404


async def test_the_event_log_page_lists_sign_ins_newest_first(console, operator):
    page = await console.get("/platform/events")
    assert page.status_code == 200
    assert 'data-action="sign_in"' in page.text and operator.email in page.text


async def test_quotas_are_shown_and_set_from_the_console(console, db, lifecycle, operator):
    org = await make_tenant(lifecycle, "quota")
    page = await console.get(f"/platform/tenants/{org.slug}")
    assert page.status_code == 200 and 'id="quota-form"' in page.text
    assert 'data-used="users">' in page.text

    bad = await console.post(
        f"/platform/tenants/{org.slug}/quotas",
        data={"users": "abc", "customers": "-1", "storage_mb": "", "_csrf_token": csrf(console)},
    )
    assert bad.status_code == 422 and bad.text.count('aria-invalid="true"') == 2
    assert (await tenant_row(db, org.slug)).max_users is None  # nothing saved

    saved = await console.post(
        f"/platform/tenants/{org.slug}/quotas",
        data={"users": "1", "customers": "500", "storage_mb": "", "_csrf_token": csrf(console)},
    )
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=quotas")
    row = await tenant_row(db, org.slug)
    assert (row.max_users, row.max_customers, row.max_storage_mb) == (1, 500, None)
    listing = await console.get("/platform/")
    listed = re.search(rf'data-slug="{org.slug}">(.*?)</tr>', listing.text, re.S)[1]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", listed, re.S)
    assert "/ 1<" in cells[5] and "/ 500<" in cells[6]
    (event,) = await events(db, tenant_slug=org.slug, action="tenant.quotas")
    assert event["details"] == {"users": 1, "customers": 500, "storage_mb": None}
    assert event["actor"] == operator.email
