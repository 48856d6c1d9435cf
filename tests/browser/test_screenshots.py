"""The main pages of the demo tenant (`make run`'s data), in zh-CN and in English, as its loan officer
sees them: each renders in its language without a script, CSP or HTTP error, and is photographed at
1280x800 for the README (docs/screenshots/<language>/ with TENANTCRM_SCREENSHOTS=1, else a temporary
folder). The dashboard, the customer list, a loan's schedule reached from its customer, the segment
builder with a live count, and my day.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.demo import ensure_demo_tenant
from tenantcrm.loans.service import LoanFilter, LoanService
from tenantcrm.settings import Settings
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.session import tenant_session
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import path_is
from tests.conftest import principal_of

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1280, "height": 800}
LANGUAGES = {"zh-CN": "zh-CN", "en": "en-US"}  # folder: the browser's locale (Accept-Language)


@pytest.fixture(scope="module")
async def demo(db: Database, settings: Settings):
    """The demo tenant as `make run` makes it (created once; test_demo reruns it as well)."""
    return await ensure_demo_tenant(db, settings)


async def overdue_loan(db: Database, demo) -> str:
    """The officer's loan furthest behind, so its schedule shows paid, overdue and coming rows."""
    tenant = await find_tenant_by_slug(db, demo.slug)
    officer = await principal_of(db, tenant, demo.officer_email)
    async with tenant_session(db, tenant) as session:
        service = LoanService(session, officer)
        for bucket in ("31-60", "61-90", "1-30", "91-180"):
            page = await service.list_loans(LoanFilter(status="active", bucket=bucket), first=1)
            if page.rows:
                return str(page.rows[0].loan.id)
    raise AssertionError("the demo book has no overdue loan")


async def shoot(page: Page, folder: Path, name: str) -> None:
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(folder / f"{name}.png"), caret="initial")


@pytest.mark.parametrize("language", sorted(LANGUAGES))
async def test_main_pages_of_the_demo_in_each_language(
    language: str, new_context: NewContext, db: Database, demo, screenshots_dir: Path
) -> None:
    locale = LANGUAGES[language]
    folder = screenshots_dir / language
    folder.mkdir(exist_ok=True)
    context = await new_context(locale=locale, viewport=VIEWPORT, reduced_motion="reduce")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    slug = demo.slug

    await page.goto(f"/t/{slug}/login")
    await page.fill("#email", demo.officer_email)
    await page.fill("#password", demo.password)
    await page.click(f"form[action='/t/{slug}/login'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if language == "zh-CN" else "en")
    await expect(page.locator("#customer-table tbody tr")).to_have_count(25)
    await shoot(page, folder, "customers")

    await page.click(f"nav.mainnav a[href='/t/{slug}/dashboard']")
    for chart in ("creditGrades", "classes", "trend", "regions"):
        await expect(page.locator(f"[data-chart='{chart}'][data-drawn='true'] canvas").first).to_be_visible()
    await shoot(page, folder, "dashboard")

    loan_id = await overdue_loan(db, demo)
    await page.goto(f"/t/{slug}/loans/{loan_id}")
    await expect(page.locator("#schedule-table tr.row-overdue").first).to_be_visible()
    await page.locator("#schedule-table").scroll_into_view_if_needed()
    await page.evaluate("() => window.scrollBy(0, -120)")
    await shoot(page, folder, "loan-schedule")

    await page.goto(f"/t/{slug}/segments/new")
    total = await page.locator("#segment-count").inner_text()
    await page.click("button[value='add_condition:g0']")
    await page.select_option("select[name='g0.c0.value']", "high")
    await expect(page.locator("#segment-count")).not_to_have_text(total)
    # Preview posts the builder back, so the row drops the mark it got while it had no value.
    await page.click("button[value='preview']:not(.seg-default)")
    await expect(page.locator(".seg-row.has-error")).to_have_count(0)
    await shoot(page, folder, "segment-builder")

    await page.click(f"nav.mainnav a[href='/t/{slug}/my-day']")
    await expect(page.locator("#due-today tbody tr").first).to_be_visible()
    await shoot(page, folder, "my-day")

    assert errors == []
