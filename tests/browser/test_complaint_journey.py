"""An officer works through many complaints in a real browser: the customer's tab shows more in place
(htmx), the complaints list sorts by a header and pages forward and back. Selectors use ids, hrefs
and rel, not wording."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import insert

from tenantcrm.complaints.models import Complaint
from tenantcrm.database import Database
from tenantcrm.tenancy.session import tenant_session
from tests.browser.test_lending_journey import sign_in
from tests.conftest import TenantFixture, add_user, make_tenant
from tests.integration.web.test_lending_pages import Book

pytestmark = pytest.mark.browser
COMPLAINTS = 65


@pytest.fixture
async def branch(lifecycle) -> TenantFixture:
    return await make_tenant(lifecycle, "complaintdesk")


async def test_officer_shows_more_complaints_and_pages_the_list_in_both_directions(
    page: Page, page_errors: list[str], http_errors: list[str], db: Database, branch: TenantFixture
) -> None:
    slug = branch.slug
    officer = await add_user(db, branch.tenant, "loan_officer")
    customer = await Book(db, branch.tenant, officer).customer()
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    async with tenant_session(db, branch.tenant) as session:
        # Many at once, as years of a busy branch leave them (the form records one at a time).
        await session.execute(
            insert(Complaint),
            [
                {
                    "customer_id": customer,
                    "category": "service",
                    "content": f"第{n}次投诉",
                    "received_at": start + timedelta(hours=n),
                    "respond_by": start + timedelta(days=n),
                }
                for n in range(COMPLAINTS)
            ],
        )
    await sign_in(page, slug, officer)

    await page.goto(f"/t/{slug}/customers/{customer}?tab=complaints")
    rows = page.locator("#customer-complaints tbody tr[id^='complaint-']")
    await expect(rows).to_have_count(20)
    for shown in (40, 60, COMPLAINTS):
        await page.click("#complaints-more a")
        await expect(rows).to_have_count(shown)
    await expect(page.locator("#complaints-more")).to_have_count(0)
    assert f"/customers/{customer}" in page.url and "after=" not in page.url  # shown in place

    await page.goto(f"/t/{slug}/complaints")
    listed = page.locator("#complaints tbody tr[id^='complaint-']")
    await expect(listed).to_have_count(50)
    await page.click("#complaints thead a[href*='sort=received_at']")  # newest first
    await expect(page.locator("#complaints th[aria-sort='descending'] a[href*='received_at']")).to_have_count(
        1
    )
    newest = await listed.first.get_attribute("id")
    await page.click("nav.pager a[rel='next']")
    await expect(listed).to_have_count(COMPLAINTS - 50)
    assert newest != await listed.first.get_attribute("id")
    await page.click("nav.pager a[rel='prev']")
    await expect(listed).to_have_count(50)
    await expect(listed.first).to_have_id(newest)
    await expect(page.locator("nav.pager a[rel='prev']")).to_have_count(0)
    assert page_errors == [] and http_errors == []
