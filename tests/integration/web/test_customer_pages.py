"""Customer pages: full pages and htmx partials, sealed search, forms with messages in two languages."""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote

import pytest

from tenantcrm.customers.service import CustomerService
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, principal_of, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext


@pytest.fixture
async def officer(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    return email


def csrf(client) -> dict[str, str]:
    return {"_csrf_token": client.cookies["csrftoken"]}


async def create(client, slug: str, **values: str):
    return await client.post(
        f"/t/{slug}/customers/new", data={**csrf(client), **values}, follow_redirects=False
    )


async def test_list_is_a_full_private_page_that_varies_on_htmx(client, tenant_a, officer):
    response = await client.get(f"/t/{tenant_a.slug}/customers")
    assert response.status_code == 200
    assert response.text.lstrip().startswith("<!doctype html>")
    assert 'id="customer-results"' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "HX-Request" in response.headers["vary"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_htmx_request_gets_only_the_results_partial(client, tenant_a, officer):
    response = await client.get(
        f"/t/{tenant_a.slug}/customers?sort=name&direction=asc",
        headers={"HX-Request": "true", "HX-Target": "customer-results"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text and response.text.lstrip().startswith('<div id="customer-results">')
    assert response.headers["hx-push-url"].startswith(f"/t/{tenant_a.slug}/customers?")
    boosted = await client.get(
        f"/t/{tenant_a.slug}/customers", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in boosted.text  # a boosted navigation swaps the whole body


async def test_search_term_never_appears_in_the_url(client, tenant_a, officer):
    marker = uuid.uuid4().hex[:8]
    name = f"搜索 {marker}"
    assert (await create(client, tenant_a.slug, kind="individual", name=name)).status_code == 303
    await create(client, tenant_a.slug, kind="individual", name=f"other {uuid.uuid4().hex[:8]}")
    posted = await client.post(
        f"/t/{tenant_a.slug}/customers", data={**csrf(client), "search": name}, follow_redirects=False
    )
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert marker not in unquote(location) and "搜索" not in unquote(location) and "q=" in location
    page = await client.get(location)
    assert name in page.text
    assert re.search(r"<tbody>.*?</tbody>", page.text, re.S).group(0).count("<tr") == 1

    partial = await client.post(
        f"/t/{tenant_a.slug}/customers",
        data={**csrf(client), "search": name},
        headers={"HX-Request": "true", "HX-Target": "customer-results"},
    )
    assert name in partial.text and marker not in unquote(partial.headers["hx-push-url"])


async def test_a_sealed_search_from_another_user_reveals_nothing(client, db, tenant_a, officer):
    marker = uuid.uuid4().hex[:8]
    await create(client, tenant_a.slug, kind="individual", name=f"sealed {marker}")
    posted = await client.post(
        f"/t/{tenant_a.slug}/customers", data={**csrf(client), "search": marker}, follow_redirects=False
    )
    other = await add_user(db, tenant_a.tenant, "loan_officer")
    await web_sign_in(client, tenant_a.slug, other)
    page = await client.get(posted.headers["location"])
    assert page.status_code == 200
    assert f'value="{marker}"' not in page.text  # the other user's search box stays empty


async def test_create_then_view_then_edit(client, tenant_a, officer):
    name = f"王五 {uuid.uuid4().hex[:6]}"
    created = await create(
        client,
        tenant_a.slug,
        kind="enterprise",
        name=name,
        region_code="440300",
        monthly_income="20,000.5",
        risk_level="high",
        status="active",
    )
    assert created.status_code == 303
    detail_url = created.headers["location"]
    detail = await client.get(detail_url)
    assert detail.status_code == 200 and name in detail.text and "20,000.50" in detail.text
    assert "深圳市" in detail.text
    assert detail.headers["cache-control"] == "no-store"

    form = await client.get(f"{detail_url}/edit")
    assert 'value="20000.50"' in form.text and 'value="440300" selected' in form.text
    edited = await client.post(
        f"{detail_url}/edit",
        data={
            **csrf(client),
            "kind": "enterprise",
            "name": name + " 改",
            "region_code": "",
            "monthly_income": "",
            "risk_level": "low",
            "status": "settled",
        },
        follow_redirects=False,
    )
    assert edited.status_code == 303
    detail = await client.get(detail_url)
    assert name + " 改" in detail.text and "深圳市" not in detail.text


async def test_invalid_form_is_redisplayed_with_messages_in_chinese_and_writes_nothing(
    client, tenant_a, officer
):
    marker = uuid.uuid4().hex[:8]
    response = await create(client, tenant_a.slug, kind="individual", name="", monthly_income=f"-{marker}")
    assert response.status_code == 422
    assert ZH("Name is required.") in response.text
    assert ZH("Name is required.") != "Name is required."  # the catalog really translates it
    assert 'aria-invalid="true"' in response.text and f"-{marker}" in response.text  # input kept
    listing = await client.post(
        f"/t/{tenant_a.slug}/customers", data={**csrf(client), "search": marker}, follow_redirects=True
    )
    assert marker not in listing.text.split('id="customer-results"')[1]


async def test_english_is_chosen_by_cookie_or_accept_language(client, tenant_a, officer):
    await client.get("/lang/en?next=/", follow_redirects=False)
    response = await create(client, tenant_a.slug, kind="individual", name="")
    assert "Name is required." in response.text
    client.cookies.delete("tcrm_lang")
    page = await client.get(f"/t/{tenant_a.slug}/customers", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert ">Customers<" in page.text


async def test_language_switch_refuses_foreign_redirects(client):
    response = await client.get("/lang/en?next=//evil.example", follow_redirects=False)
    assert response.headers["location"] == "/"


async def test_pages_send_anonymous_visitors_to_sign_in(client, tenant_a):
    response = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/t/{tenant_a.slug}/login?next=/t/{tenant_a.slug}/customers"
    htmx = await client.get(f"/t/{tenant_a.slug}/customers", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith(f"/t/{tenant_a.slug}/login")


async def test_unknown_customer_is_a_not_found_page(client, tenant_a, officer):
    for path in (uuid.uuid4(), "nonsense", f"{uuid.uuid4()}/edit"):
        response = await client.get(f"/t/{tenant_a.slug}/customers/{path}")
        assert response.status_code == 404 and "<html" in response.text


async def test_viewer_sees_forbidden_page_on_create(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, email)
    response = await create(client, tenant_a.slug, kind="individual", name="x")
    assert response.status_code == 403


async def test_viewer_is_not_offered_write_actions(client, db, tenant_a):
    admin = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        customer = await CustomerService(session, admin).create_customer(
            {"name": f"只读 {uuid.uuid4().hex[:6]}"}
        )
    email = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, email)
    listing = await client.get(f"/t/{tenant_a.slug}/customers")
    assert listing.status_code == 200
    assert f'href="/t/{tenant_a.slug}/customers/new"' not in listing.text
    detail = await client.get(f"/t/{tenant_a.slug}/customers/{customer.id}")
    assert detail.status_code == 200 and customer.name in detail.text
    assert f"/customers/{customer.id}/edit" not in detail.text


async def test_detail_title_does_not_name_the_customer(client, tenant_a, officer):
    name = f"标题 {uuid.uuid4().hex[:6]}"
    created = await create(client, tenant_a.slug, kind="individual", name=name)
    detail = await client.get(created.headers["location"])
    title = re.search(r"<title>(.*?)</title>", detail.text, re.S).group(1)
    assert name not in title and name in detail.text
