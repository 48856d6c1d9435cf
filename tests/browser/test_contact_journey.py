"""A loan officer logs a call with a follow-up due today, finds it in My day and ticks it off.

Selectors use ids, hrefs and form actions rather than visible text: the UI language follows the
browser (zh-CN here) and its wording belongs to the message catalog.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import SCREENSHOT, path_is, seed_customer, sign_in
from tests.conftest import TenantFixture, add_user

pytestmark = pytest.mark.browser


@pytest.fixture
async def officer(db: Database, tenant_a: TenantFixture) -> str:
    return await add_user(db, tenant_a.tenant, "loan_officer")


async def log_contact(page: Page, customer_path: str, summary: str, next_step: str) -> None:
    """Two clicks: open the disclosure in the header, then save (time defaults to now); the
    follow-up is due today."""
    await page.goto(customer_path)
    await page.click("#log-contact > summary")
    await expect(page.locator("#interaction-at")).not_to_have_value("")
    await page.select_option("#interaction-channel", "phone")
    await page.fill("#interaction-summary", summary)
    await page.fill("#interaction-next-step", next_step)
    await page.fill("#interaction-follow-up-on", date.today().isoformat())
    await page.click("#log-contact-submit")
    await page.wait_for_url(lambda url: "tab=timeline" in url and urlsplit(url).path == customer_path)


async def test_officer_logs_a_contact_and_ticks_off_its_follow_up(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    tenant_a: TenantFixture,
    officer: str,
    screenshots_dir: Path,
) -> None:
    slug = tenant_a.slug
    customer_id = await seed_customer(db, tenant_a, officer)
    customer_path = f"/t/{slug}/customers/{customer_id}"
    await sign_in(page, slug, officer)
    await page.goto(customer_path)

    await log_contact(page, customer_path, "电话沟通续贷意向，客户需要一周准备材料", "收取营业执照和流水")
    await expect(page.locator("#timeline li.event-interaction")).to_have_count(1)
    await expect(page.locator("#timeline")).to_contain_text("电话沟通续贷意向")
    await expect(page.locator("#open-follow-ups tbody tr[id^=follow-up-]")).to_have_count(1)
    await page.screenshot(path=screenshots_dir / "contact-timeline.png", **SCREENSHOT)

    # My day lists it under "due today", linked to the customer.
    await page.click(f"header a[href='/t/{slug}/my-day']")
    await page.wait_for_url(path_is(f"/t/{slug}/my-day"))
    row = page.locator("#due-today tbody tr[id^=follow-up-]")
    await expect(row).to_have_count(1)
    await expect(row.locator(f"a[href='{customer_path}?tab=timeline']")).to_have_count(1)
    await expect(row).to_contain_text("收取营业执照和流水")
    await page.screenshot(path=screenshots_dir / "my-day.png", **SCREENSHOT)

    # Ticking it off swaps the row in place (htmx): same page, row now done.
    async with page.expect_response(lambda r: r.url.endswith("/done")) as ticked:
        await row.locator("button.tick").click()
    response = await ticked.value
    assert response.status == 200 and response.request.headers.get("hx-request") == "true"
    await expect(page.locator("#due-today tbody tr.done")).to_have_count(1)
    await expect(page.locator("#due-today button.tick")).to_have_count(0)
    assert urlsplit(page.url).path == f"/t/{slug}/my-day"

    # It stays done: a fresh My day has nothing due today.
    await page.reload()
    await expect(page.locator("#due-today tbody tr[id^=follow-up-]")).to_have_count(0)

    assert page_errors == []
    assert http_errors == []


async def test_log_contact_and_tick_off_without_javascript(
    new_context: NewContext, db: Database, tenant_a: TenantFixture, officer: str
) -> None:
    slug = tenant_a.slug
    customer_id = await seed_customer(db, tenant_a, officer)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, slug, officer)
    await page.goto(f"/t/{slug}/customers/{customer_id}")
    await page.click("#log-contact > summary")
    # A refused contact comes back in place, the disclosure open, the message beside the field.
    await page.click("#log-contact-submit")
    await expect(page.locator("#summary-error")).to_be_visible()
    await page.fill("#interaction-summary", "上门拜访")
    await page.fill("#interaction-follow-up-on", date.today().isoformat())
    await page.click("#log-contact-submit")
    await page.wait_for_url(lambda url: "tab=timeline" in url)
    await page.goto(f"/t/{slug}/my-day")
    await page.click("#due-today button.tick")
    await page.wait_for_url(path_is(f"/t/{slug}/my-day"))
    await expect(page.locator("#due-today tbody tr[id^=follow-up-]")).to_have_count(0)
