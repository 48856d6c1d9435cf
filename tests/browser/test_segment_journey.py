"""A manager builds a segment in a real browser: add a condition, watch the live count change as a
value is chosen and typed, nest a group, save and share it, then read its breakdown chart; and the
same builder without JavaScript. Selectors use names, ids and values, not wording."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.settings import REPO_ROOT
from tenantcrm.web.i18n import translations
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import SCREENSHOT, sign_in
from tests.conftest import TenantFixture, add_user, make_tenant
from tests.integration.web.test_lending_pages import Book

pytestmark = pytest.mark.browser
ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext


@pytest.fixture
async def branch(lifecycle) -> TenantFixture:
    return await make_tenant(lifecycle, "segshop")


async def seed(db: Database, branch: TenantFixture) -> str:
    manager = await add_user(db, branch.tenant, "manager")
    book = Book(db, branch.tenant, manager)
    await book.customer(risk_level="high", region_code="310000", credit_score="720")
    await book.customer(risk_level="high", region_code="110000", credit_score="560")
    await book.customer(risk_level="low", region_code="310000")
    return manager


async def test_manager_builds_previews_saves_and_charts_a_segment(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    branch: TenantFixture,
    screenshots_dir: Path,
) -> None:
    manager = await seed(db, branch)
    slug = branch.slug
    await sign_in(page, slug, manager)
    await page.goto(f"/t/{slug}/segments/new")
    count = page.locator("#segment-count")
    await expect(count).to_have_text("3")

    await page.click("button[value='add_condition:g0']")  # posted back: the page comes again
    first_problem = page.locator("#error-g0-c0")  # the new row has no value yet, in the reader's words
    await expect(first_problem).to_have_text(
        ZH("{where}: choose a value for {label}.").format(
            where=ZH("Condition {number}").format(number=1), label=ZH("Risk level")
        )
    )
    await page.select_option("select[name='g0.c0.value']", "high")  # htmx: the preview alone
    await expect(count).to_have_text("2")
    await expect(first_problem).to_be_hidden()  # the preview took the row's problem away with it

    await page.click("button[value='add_group:g0']")
    await page.select_option("select[name='g0.g1.c0.field']", "creditScore")
    await page.click("button[value='preview']:not(.seg-default)")  # the operator list follows the field
    await page.select_option("select[name='g0.g1.c0.op']", "gte")
    await page.locator("input[name='g0.g1.c0.value']").press_sequentially("700")  # keyup, a pause, preview
    await expect(count).to_have_text("1")
    await page.fill("input[name='g0.g1.c0.value']", "")
    await page.locator("input[name='g0.g1.c0.value']").press_sequentially("abc")
    await expect(page.locator("#segment-preview .alert")).to_be_visible()
    nested_problem = page.locator("#error-g0-g1-c0")  # the group's row is the page's second condition
    await expect(nested_problem).to_contain_text(ZH("Condition {number}").format(number=2))
    await expect(nested_problem).to_contain_text(ZH("Credit score"))
    await page.fill("input[name='g0.g1.c0.value']", "")
    await page.locator("input[name='g0.g1.c0.value']").press_sequentially("500")
    await expect(count).to_have_text("2")
    await expect(nested_problem).to_be_hidden()

    await page.fill("#segment-name", "上海高分客户")
    await page.check("input[name='shared']")
    await page.click("button[name='action'][value='save']")
    await expect(page.locator("#segment-saved-count")).to_be_visible()
    chart = page.locator("[data-segment-chart]")
    await expect(chart).to_have_attribute("data-drawn", "true")
    await page.select_option("#segment-by", "regionCode")  # htmx swaps the breakdown, the chart redraws
    await expect(page.locator("#segment-breakdown-table")).to_contain_text("上海市")
    await expect(page.locator("[data-segment-chart]")).to_have_attribute("data-drawn", "true")
    await page.screenshot(path=str(screenshots_dir / "segment.png"), **SCREENSHOT)
    assert page_errors == []
    # Previewing the new row before it had a value was refused (its inline error), nothing else.
    assert http_errors == [f"422 POST /t/{slug}/segments/new"]


async def test_the_builder_works_without_javascript(
    new_context: NewContext, db: Database, branch: TenantFixture
) -> None:
    manager = await seed(db, branch)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    slug = branch.slug
    await sign_in(page, slug, manager)
    await page.goto(f"/t/{slug}/segments/new")
    await page.click("button[value='add_condition:g0']")
    await page.select_option("select[name='g0.c0.value']", "low")
    await page.click("button[value='preview']:not(.seg-default)")
    await expect(page.locator("#segment-count")).to_have_text("1")
    await page.click("button[value='remove:g0.c0']")
    await expect(page.locator("select[name='g0.c0.field']")).to_have_count(0)
    await expect(page.locator("#segment-count")).to_have_text("3")
