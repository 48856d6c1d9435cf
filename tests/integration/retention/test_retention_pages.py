"""The retention settings page and the legal-hold route: both languages, admin.retention only,
inline errors that save nothing, the dry run (htmx and plain) and a confirmed run."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from tenantcrm.customers.models import Customer
from tenantcrm.retention.models import RetentionPolicy, RetentionRun
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.retention.helpers import enable_all, fingerprint, seed_customer

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
EN = {"Accept-Language": "en"}


def shows(response, message: str, zh: bool = True) -> bool:
    return str(escape(ZH(message) if zh else message)) in response.text


async def post(client, path: str, data: dict | None = None, **kwargs):
    data = {"_csrf_token": client.cookies["csrftoken"], **(data or {})}
    return await client.post(path, data=data, follow_redirects=False, **kwargs)


@pytest.fixture
async def office(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "retweb")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    prospect = await seed_customer(db, settings, fixture.tenant, admin)
    return fixture, admin, prospect


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "prospects.period_days": "365",
        "prospects.action": "delete",
        "prospects.enabled": "on",
        "closed_customers.period_days": "1825",
        "closed_customers.action": "anonymise",
        "interactions.period_days": "1825",
        "interactions.action": "anonymise",
        "complaints.period_days": "1825",
        "complaints.action": "anonymise",
        "pii_access_log.period_days": "1095",
        "pii_access_log.action": "delete",
        "sessions.period_days": "30",
        "sessions.action": "delete",
        "audit_events.period_days": "1825",
        "audit_events.action": "delete",
    }
    return {**form, **overrides}


async def test_the_page_renders_in_both_languages_and_is_in_the_settings_navigation(client, office):
    fixture, *_ = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    chinese = await client.get(f"/t/{fixture.slug}/settings/retention")
    assert chinese.status_code == 200
    for message in ("Data retention", "Prospects never converted", "Dry run", "No run yet."):
        assert shows(chinese, message) and ZH(message) != message, message
    english = await client.get(f"/t/{fixture.slug}/settings/retention", headers=EN)
    assert shows(english, "Settled or closed customers", zh=False) and not shows(english, "Data retention")
    users = await client.get(f"/t/{fixture.slug}/settings/users")
    assert f'href="/t/{fixture.slug}/settings/retention"' in users.text
    # Sessions can only be deleted: the page offers nothing else.
    sessions_row = re.search(r'id="policy-sessions".*?</tr>', chinese.text, re.S).group(0)
    assert 'value="delete"' in sessions_row and 'value="anonymise"' not in sessions_row
    # So can audit events (a hash chain cannot be anonymised), named in the reader's language.
    audit_row = re.search(r'id="policy-audit_events".*?</tr>', chinese.text, re.S).group(0)
    assert 'value="delete"' in audit_row and 'value="anonymise"' not in audit_row
    assert shows(chinese, "Audit log events") and ZH("Audit log events") != "Audit log events"
    assert 'value="1825"' in audit_row


async def test_policies_are_saved_and_bad_ones_refused_inline_saving_nothing(client, db, office):
    fixture, *_ = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    path = f"/t/{fixture.slug}/settings/retention"
    refused = await post(
        client,
        path,
        _form(
            **{
                "complaints.period_days": "5",
                "sessions.action": "anonymise",
                "audit_events.period_days": "200",
            }
        ),
        headers=EN,
    )
    assert refused.status_code == 422
    row = re.search(r'id="policy-complaints".*?</tr>', refused.text, re.S).group(0)
    assert 'class="is-invalid"' in row and "Enter a whole number of days from 30 to 3650." in row
    assert 'value="5"' in row  # what was typed stays
    assert 'id="sessions-action-error"' in refused.text
    audit_row = re.search(r'id="policy-audit_events".*?</tr>', refused.text, re.S).group(0)
    assert "Enter a whole number of days from 365 to 3650." in audit_row and 'value="200"' in audit_row
    async with tenant_session(db, fixture.tenant) as session:
        assert not (await session.get(RetentionPolicy, "prospects")).enabled

    zh = await post(client, path, _form(**{"complaints.period_days": "abc"}))
    assert zh.status_code == 422 and shows(zh, "Enter a whole number of days from {low} to {high}.") is False
    assert (
        str(escape(ZH("Enter a whole number of days from {low} to {high}.").format(low=30, high=3650)))
        in zh.text
    )

    saved = await post(client, path, _form())
    assert saved.status_code == 303 and saved.headers["location"] == f"{path}?saved=1"
    async with tenant_session(db, fixture.tenant) as session:
        prospects = await session.get(RetentionPolicy, "prospects")
        complaints = await session.get(RetentionPolicy, "complaints")
    assert (prospects.enabled, prospects.period_days, prospects.action) == (True, 365, "delete")
    assert complaints.enabled is False


async def test_dry_run_shows_counts_and_run_now_asks_first(client, db, office):
    fixture, admin, prospect = office
    await enable_all(db, fixture.tenant, admin, action="delete", disabled=("interactions", "complaints"))
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    base = f"/t/{fixture.slug}/settings/retention"
    before = await fingerprint(db, fixture.tenant)

    plain = await post(client, f"{base}/dry-run", headers=EN)
    assert plain.status_code == 200 and "<html" in plain.text
    assert re.search(r'id="plan-prospects".*?<td class="num">1</td>', plain.text, re.S)
    partial = await post(
        client, f"{base}/dry-run", headers={"HX-Request": "true", "HX-Target": "retention-plan"}
    )
    assert "<html" not in partial.text and partial.text.lstrip().startswith('<div id="retention-plan"')
    asked = await post(client, f"{base}/run")
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    assert shows(asked, "Run the enabled policies now? What is deleted cannot be restored.")
    assert await fingerprint(db, fixture.tenant) == before
    for value in prospect.values.values():
        assert value not in partial.text

    ran = await post(client, f"{base}/run", {"confirm": "yes"})
    assert ran.status_code == 303 and ran.headers["location"] == f"{base}?ran=1"
    async with tenant_session(db, fixture.tenant) as session:
        assert await session.get(Customer, prospect.id) is None
        run = await session.scalar(select(RetentionRun))
    assert run.trigger == "manual" and run.actor == fixture.admin_email
    listed = await client.get(ran.headers["location"], headers=EN)
    assert "Prospects never converted: 1 (Delete)" in listed.text


async def test_without_admin_retention_the_page_and_posts_are_forbidden(client, db, office):
    fixture, _, prospect = office
    manager = await add_user(db, fixture.tenant, "manager")
    await web_sign_in(client, fixture.slug, manager)
    base = f"/t/{fixture.slug}/settings/retention"
    assert (await client.get(base)).status_code == 403
    before = await fingerprint(db, fixture.tenant)
    for path, data in (
        (base, _form()),
        (f"{base}/dry-run", {}),
        (f"{base}/run", {"confirm": "yes"}),
        (f"/t/{fixture.slug}/customers/{prospect.id}/legal-hold", {"hold": "on"}),
    ):
        assert (await post(client, path, data)).status_code == 403, path
    assert await fingerprint(db, fixture.tenant) == before
    tokens = await client.get(f"/t/{fixture.slug}/settings/tokens")
    assert f'href="{base}"' not in tokens.text


async def test_legal_hold_is_set_and_released_from_the_customer(client, db, office):
    fixture, _, prospect = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    path = f"/t/{fixture.slug}/customers/{prospect.id}/legal-hold"
    held = await post(client, path, {"hold": "on"})
    assert (
        held.status_code == 303 and held.headers["location"] == f"/t/{fixture.slug}/customers/{prospect.id}"
    )
    async with tenant_session(db, fixture.tenant) as session:
        assert (await session.get(Customer, prospect.id)).legal_hold is True
    await post(client, path, {})
    async with tenant_session(db, fixture.tenant) as session:
        assert (await session.get(Customer, prospect.id)).legal_hold is False
    missing = await post(
        client, f"/t/{fixture.slug}/customers/00000000-0000-0000-0000-000000000000/legal-hold"
    )
    assert missing.status_code == 404
