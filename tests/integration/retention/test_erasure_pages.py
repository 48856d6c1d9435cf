"""Erasure request pages: record a request (inline errors), review by a second admin, execute,
and the certificate in both languages; admin.retention only."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape

from tenantcrm.customers.models import Customer
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.retention.helpers import fingerprint, seed_customer

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
EN = {"Accept-Language": "en"}


async def post(client, path: str, data: dict | None = None, **kwargs):
    data = {"_csrf_token": client.cookies["csrftoken"], **(data or {})}
    return await client.post(path, data=data, follow_redirects=False, **kwargs)


@pytest.fixture
async def office(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "erweb")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    reviewer = await add_user(db, fixture.tenant, "admin")
    seeded = await seed_customer(db, settings, fixture.tenant, admin, aged=False)
    return fixture, reviewer, seeded


async def test_request_review_execute_and_certificate(client, db, office):
    fixture, reviewer, seeded = office
    base = f"/t/{fixture.slug}/settings/retention/erasures"
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    form = await client.get(f"{base}?customer={seeded.id}")
    assert form.status_code == 200 and f'value="{seeded.id}"' in form.text
    assert str(escape(ZH("Erasure requests"))) in form.text

    refused = await post(client, base, {"customer_id": "", "basis": "x"}, headers=EN)
    assert refused.status_code == 422 and "Give the customer&#39;s id." in refused.text
    created = await post(
        client,
        base,
        {
            "customer_id": str(seeded.id),
            "basis": "consent_withdrawn",
            "requester": "data_subject",
            "action": "delete",
        },
    )
    assert created.status_code == 303
    page_path = created.headers["location"]
    same = await post(client, f"{page_path}/review", {"decision": "approve"})
    assert (
        same.status_code == 422
        and str(escape(ZH("Someone other than the requester must review it."))) in same.text
    )

    await client.post(f"/t/{fixture.slug}/logout", data={"_csrf_token": client.cookies["csrftoken"]})
    await web_sign_in(client, fixture.slug, reviewer)
    no_reason = await post(client, f"{page_path}/review", {"decision": "reject"}, headers=EN)
    assert no_reason.status_code == 422 and 'id="note-error"' in no_reason.text
    assert (await post(client, f"{page_path}/review", {"decision": "approve"})).status_code == 303
    executed = await post(client, f"{page_path}/execute")
    assert executed.status_code == 303

    certificate = await client.get(page_path, headers=EN)
    assert 'id="certificate"' in certificate.text and "Executed" in certificate.text
    assert re.search(r'id="removed-interactions".*?<td class="num">1</td>', certificate.text, re.S)
    for value in seeded.values.values():
        assert value not in certificate.text
    chinese = await client.get(page_path)
    assert str(escape(ZH("Erasure certificate"))) in chinese.text
    async with tenant_session(db, fixture.tenant) as session:
        assert await session.get(Customer, seeded.id) is None


async def test_without_admin_retention_erasure_pages_are_forbidden(client, db, office):
    fixture, _, seeded = office
    manager = await add_user(db, fixture.tenant, "manager")
    await web_sign_in(client, fixture.slug, manager)
    base = f"/t/{fixture.slug}/settings/retention/erasures"
    before = await fingerprint(db, fixture.tenant)
    assert (await client.get(base)).status_code == 403
    posted = await post(
        client,
        base,
        {
            "customer_id": str(seeded.id),
            "basis": "consent_withdrawn",
            "requester": "data_subject",
            "action": "delete",
        },
    )
    assert posted.status_code == 403
    assert await fingerprint(db, fixture.tenant) == before


async def test_an_unknown_request_is_not_found(client, office):
    fixture, *_ = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    base = f"/t/{fixture.slug}/settings/retention/erasures/00000000-0000-0000-0000-000000000000"
    assert (await client.get(base)).status_code == 404
    assert (await post(client, f"{base}/execute")).status_code == 404
