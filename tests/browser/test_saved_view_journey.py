"""An officer arranges the customer list (columns, a filter, an order), saves it as a view that the
list then opens with, applies it and the standard view, and manages views; and the same without
JavaScript. Selectors use ids, names, data attributes and hrefs, not wording.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import SCREENSHOT, path_is, sign_in
from tests.conftest import TenantFixture, add_user
from tests.integration.web.test_lending_pages import Book

pytestmark = pytest.mark.browser


async def seed(db: Database, tenant_a: TenantFixture) -> tuple[str, list[str]]:
    """A loan officer of its own with three customers: two high-risk (incomes 9,000 and 30,000), one low."""
    officer = await add_user(db, tenant_a.tenant, "loan_officer")
    book = Book(db, tenant_a.tenant, officer)
    tag = secrets.token_hex(3)
    names = [f"视图{tag}甲", f"视图{tag}乙", f"视图{tag}丙"]
    for name, income, risk in zip(names, ("9000", "30000", "50000"), ("high", "high", "low"), strict=True):
        await book.customer(name=name, monthly_income=income, risk_level=risk, credit_grade="BB")
    return officer, names


def headers(page: Page):
    return page.locator("#customer-table thead th")


def first_cells(page: Page):
    return page.locator("#customer-table tbody tr td:first-child")


async def test_officer_saves_a_view_and_the_list_opens_with_it(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    tenant_a: TenantFixture,
    screenshots_dir: Path,
) -> None:
    slug = tenant_a.slug
    officer, (low_income, high_income, low_risk) = await seed(db, tenant_a)
    await sign_in(page, slug, officer)
    await expect(headers(page)).to_have_count(9)
    await expect(page.locator("#saved-views a[data-view=standard][aria-current=true]")).to_have_count(1)

    # Columns: each box swaps the results (htmx); the name column cannot be unticked.
    await page.click("details.columns-chooser > summary")
    await expect(page.locator("#col-name")).to_be_disabled()
    for column in ("kind", "phone", "region", "owner", "created_at"):
        async with page.expect_response(lambda r: r.request.method == "POST"):
            await page.uncheck(f"#col-{column}")
    await page.check("#col-credit_grade")
    await expect(headers(page)).to_have_count(5)  # name, income, credit grade, risk, status

    # A filter, then an order by a header; a search typed afterwards keeps that order.
    await page.select_option("#risk_level", "high")
    await expect(first_cells(page)).to_have_count(2)
    await page.click("#customer-table thead a[href*='sort=monthly_income']")
    await expect(page.locator("th[aria-sort=descending] a[href*='sort=monthly_income']")).to_have_count(1)
    await expect(first_cells(page)).to_have_text([high_income, low_income])
    async with page.expect_response(lambda r: r.request.method == "POST") as searched:
        await page.fill("#search", low_income[:-1])
    assert (await searched.value).status == 200
    await expect(page.locator("#view-search-note")).to_be_attached()  # the term stays out of the view
    await expect(page.locator("th[aria-sort=descending] a[href*='sort=monthly_income']")).to_have_count(1)
    await expect(first_cells(page)).to_have_text([high_income, low_income])
    await page.fill("#search", "")
    await expect(page.locator("#view-search-note")).to_have_count(0)

    # Saving without a name is refused beside the field; with one, the list shows the saved view.
    await page.click("#save-view > summary")
    await page.click("#save-view-form button[type=submit]")
    await expect(page.locator("#save-view[open] #name-error")).to_be_visible()
    await expect(page.locator("#save-view-form input[name=name]")).to_have_attribute("aria-invalid", "true")
    await expect(headers(page)).to_have_count(5)  # the list as it was
    await page.fill("#save-view-form input[name=name]", "高风险收入排序")
    await page.check("#save-view-form input[name=is_default]")
    await page.click("#save-view-form button[type=submit]")
    await page.wait_for_url(lambda url: "cols=" in url and "risk_level=high" in url)
    current = page.locator("#saved-views a[aria-current=true]")
    await expect(current).to_contain_text("高风险收入排序")
    await expect(current.locator(".default-mark")).to_have_count(1)
    await expect(page.locator("#risk_level")).to_have_value("high")
    await page.screenshot(path=str(screenshots_dir / "saved-view.png"), **SCREENSHOT)

    # The standard view is one click away; the main navigation opens the default view again.
    await page.click("#saved-views a[data-view=standard]")
    await expect(headers(page)).to_have_count(9)
    await expect(first_cells(page)).to_have_count(3)
    await page.click(f"header a[href='/t/{slug}/customers']")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))
    await expect(headers(page)).to_have_count(5)
    await expect(first_cells(page)).to_have_text([high_income, low_income])
    assert low_risk not in await page.locator("#customer-table").inner_text()

    # Managing: stop using it as the default, then delete it.
    await page.click("#saved-views a.manage-views")
    await page.wait_for_url(path_is(f"/t/{slug}/customers/views"))
    row = page.locator("#saved-view-table tbody tr.is-default")
    await expect(row).to_have_count(1)
    await row.locator("button[name=default][value=off]").click()
    await expect(page.locator("#saved-view-table tbody tr.is-default")).to_have_count(0)
    await page.click(f"header a[href='/t/{slug}/customers']")
    await expect(headers(page)).to_have_count(9)
    await page.goto(f"/t/{slug}/customers/views")
    await page.click("#saved-view-table tbody form[action$='/delete'] button[type=submit]")
    await expect(page.locator("#saved-view-table tbody td.empty")).to_have_count(1)

    assert page_errors == []
    assert http_errors == [f"422 POST /t/{slug}/customers/views"]


async def test_a_view_is_saved_and_applied_without_javascript(
    new_context: NewContext, db: Database, tenant_a: TenantFixture
) -> None:
    slug = tenant_a.slug
    officer, (low_income, high_income, _low_risk) = await seed(db, tenant_a)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, slug, officer)

    # Columns and filters are a plain form: tick, choose, press search.
    await page.click("details.columns-chooser > summary")
    await page.uncheck("#col-phone")
    await page.uncheck("#col-owner")
    await page.select_option("#risk_level", "high")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(lambda url: "cols=" in url)
    await expect(headers(page)).to_have_count(7)
    await page.click("#customer-table thead a[href*='sort=monthly_income']")
    await page.wait_for_url(lambda url: "sort=monthly_income" in urlsplit(url).query)
    await expect(headers(page)).to_have_count(7)  # the order keeps the columns

    await page.click("#save-view > summary")
    await page.fill("#save-view-form input[name=name]", "无脚本视图")
    await page.click("#save-view-form button[type=submit]")
    await page.wait_for_url(lambda url: "sort=monthly_income" in url and "cols=" in url)
    await expect(page.locator("#saved-views a[aria-current=true]")).to_contain_text("无脚本视图")
    await page.click("#saved-views a[data-view=standard]")
    await expect(headers(page)).to_have_count(9)
    await page.click("#saved-views a[data-view]:not([data-view=standard])")
    await expect(headers(page)).to_have_count(7)
    await expect(first_cells(page)).to_have_text([high_income, low_income])
