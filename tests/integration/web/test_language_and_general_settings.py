"""Languages per user with a tenant default, and the institution's own settings page."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tenantcrm.auth.models import User
from tenantcrm.preferences.service import load_preferences
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, web_sign_in
from tests.integration.web.test_lending_pages import ZH, post


@pytest.fixture
async def org(lifecycle):
    return await make_tenant(lifecycle, "lang")


async def _locale_of(db, tenant, email: str) -> str | None:
    async with tenant_session(db, tenant) as session:
        return await session.scalar(select(User.locale).where(User.email == email))


async def _second_browser(app) -> httpx.AsyncClient:
    """Another browser: no language cookie, and it names no language (a kiosk, a script)."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.250", 50001))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Accept-Language": ""}
    )


async def test_a_users_choice_follows_them_to_another_browser(app, client, db, org) -> None:
    officer = await add_user(db, org.tenant, "loan_officer")
    await web_sign_in(client, org.slug, officer)

    chosen = await post(client, f"/t/{org.slug}/language", {"code": "en", "next": f"/t/{org.slug}/my-day"})

    assert chosen.status_code == 303 and chosen.headers["location"] == f"/t/{org.slug}/my-day"
    assert await _locale_of(db, org.tenant, officer) == "en"
    async with await _second_browser(app) as other:  # no language cookie there
        await web_sign_in(other, org.slug, officer)
        page = await other.get(f"/t/{org.slug}/customers")
    assert "Customers" in page.text and ZH("Customers") not in page.text


async def test_a_tampered_choice_or_an_outside_target_changes_nothing(client, db, org) -> None:
    officer = await add_user(db, org.tenant, "loan_officer")
    await web_sign_in(client, org.slug, officer)

    odd = await post(client, f"/t/{org.slug}/language", {"code": "fr", "next": "//evil.example/"})

    assert odd.status_code == 303 and odd.headers["location"] == f"/t/{org.slug}/customers"
    assert await _locale_of(db, org.tenant, officer) is None


async def test_the_tenant_default_applies_to_users_who_have_not_chosen(app, client, db, org) -> None:
    await web_sign_in(client, org.slug, org.admin_email)
    page = await client.get(f"/t/{org.slug}/settings/general")
    assert page.status_code == 200 and ZH("Institution settings") in page.text

    saved = await post(
        client,
        f"/t/{org.slug}/settings/general",
        {
            "contact_interval_days": "45",
            "key_contact_interval_days": "7",
            "complaint_response_hours": "24",
            "default_locale": "en",
        },
    )

    assert saved.status_code == 303
    viewer = await add_user(db, org.tenant, "viewer")
    async with await _second_browser(app) as other:
        await web_sign_in(other, org.slug, viewer)
        english = await other.get(f"/t/{org.slug}/customers")
        await post(other, f"/t/{org.slug}/language", {"code": "zh_CN", "next": "/"})
        chinese = await other.get(f"/t/{org.slug}/customers")
    assert ZH("Customers") not in english.text and ZH("Customers") in chinese.text
    async with tenant_session(db, org.tenant) as session:
        preferences = await load_preferences(session)
    assert (preferences.contact_interval_days, preferences.key_contact_interval_days) == (45, 7)
    assert preferences.complaint_response_hours == 24 and preferences.default_locale == "en"


async def test_refused_settings_are_shown_and_nothing_is_saved(client, db, org) -> None:
    await web_sign_in(client, org.slug, org.admin_email)

    refused = await post(
        client,
        f"/t/{org.slug}/settings/general",
        {
            "contact_interval_days": "0",
            "key_contact_interval_days": "abc",
            "complaint_response_hours": "48",
            "default_locale": "fr",
        },
    )

    assert refused.status_code == 422
    assert refused.text.count('class="field-error"') == 3
    async with tenant_session(db, org.tenant) as session:
        preferences = await load_preferences(session)
    assert (preferences.contact_interval_days, preferences.default_locale) == (30, "zh_CN")
