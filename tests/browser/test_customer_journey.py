"""A loan officer's day in a real browser: sign in, add a customer, find it, sign out.

Selectors use ids, hrefs and form actions rather than visible text: the UI language follows the
browser (zh-CN here) and its wording belongs to the message catalog, not to these tests.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.auth.service import find_user_by_email, principal_for_user
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.tenancy.session import tenant_session
from tests.browser.conftest import NewContext
from tests.conftest import PASSWORD, TenantFixture, add_user

pytestmark = pytest.mark.browser


@pytest.fixture
async def officer(db: Database, tenant_a: TenantFixture) -> str:
    """A loan officer of tenant A of this test alone (made on the suite's event loop)."""
    return await add_user(db, tenant_a.tenant, "loan_officer")


def path_is(expected: str) -> Callable[[str], bool]:
    """A URL predicate for wait_for_url: exactly this path, whatever the query string."""
    return lambda url: urlsplit(url).path == expected


async def sign_in(page: Page, slug: str, email: str) -> None:
    await page.goto(f"/t/{slug}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click(f"form[action='/t/{slug}/login'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))


def result_rows(page: Page):
    return page.locator("#customer-results tbody tr")


async def test_officer_signs_in_creates_customer_and_finds_it_in_list(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    tenant_a: TenantFixture,
    officer: str,
    screenshots_dir: Path,
) -> None:
    slug = tenant_a.slug
    tag = secrets.token_hex(4)
    name = f"浏览器测试{tag}"
    term = f"测试{tag}"  # a part of the name, Chinese included, to check what reaches the URL

    await sign_in(page, slug, officer)
    assert await page.evaluate("typeof htmx") == "object", "htmx did not load"

    # "New customer" (translated) is found by its address.
    await page.click(f"main a[href='/t/{slug}/customers/new']")
    await page.wait_for_url(path_is(f"/t/{slug}/customers/new"))

    # Empty name: the form comes back with an inline error next to the field, nothing saved.
    await page.click("form.form button[type=submit]")
    name_error = page.locator("#name-error.field-error")
    await expect(name_error).to_be_visible()
    await expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#name")).to_have_attribute("aria-describedby", "name-error")
    await expect(page.locator("main .alert[role=alert]")).to_be_visible()
    assert urlsplit(page.url).path == f"/t/{slug}/customers/new"
    await page.screenshot(path=screenshots_dir / "customer-form-errors.png", full_page=True)

    await page.fill("#name", name)
    await page.select_option("#region_code", "440300")  # 深圳市
    await page.fill("#monthly_income", "12,345.60")
    await page.select_option("#risk_level", "high")
    await page.click("form.form button[type=submit]")
    await page.wait_for_url(re.compile(rf"/t/{re.escape(slug)}/customers/[0-9a-f-]{{36}}$"))
    await expect(page.locator("main h1")).to_contain_text(name)
    await expect(page.locator("main h1 .badge-high")).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text("12,345.60")
    customer_path = urlsplit(page.url).path

    # Back to the list, through the page's own link.
    await page.click(f"main a[href='/t/{slug}/customers']")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))
    await expect(result_rows(page).locator(f"a[href='{customer_path}']")).to_have_count(1)
    await page.screenshot(path=screenshots_dir / "customers-list.png", full_page=True)

    # Typing searches (htmx posts the form after a pause) and swaps only the results.
    async with page.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path == f"/t/{slug}/customers"
    ) as searched:
        await page.fill("#search", term)
    response = await searched.value
    assert response.status == 200
    await expect(result_rows(page)).to_have_count(1)
    row = result_rows(page).first
    await expect(row.locator(f"a[href='{customer_path}']")).to_have_text(name)
    await expect(row).to_have_class(re.compile(r"\brisk-high\b"))
    await expect(page.locator("#search")).to_have_value(term)  # the form was not swapped
    # The pushed URL keeps the list state, with the term sealed, never in clear text.
    await page.wait_for_url(lambda url: "q=" in urlsplit(url).query)
    for clear in (term, tag, quote(term)):
        assert clear not in page.url
    # ...and that URL, opened again, brings the same list back.
    await page.reload()
    await expect(page.locator("#search")).to_have_value(term)
    await expect(result_rows(page)).to_have_count(1)

    # Signing out returns to the sign-in page, and the list is closed afterwards.
    await page.click(f"header form[action='/t/{slug}/logout'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/login"))
    await expect(page.locator("#password")).to_be_visible()
    await page.goto(f"/t/{slug}/customers")
    assert urlsplit(page.url).path == f"/t/{slug}/login"
    await expect(page.locator(f"input[name=next][value='/t/{slug}/customers']")).to_have_count(1)

    assert page_errors == []
    assert http_errors == [f"422 POST /t/{slug}/customers/new"]


async def _seed_customers(db: Database, tenant_a: TenantFixture, email: str, names_incomes) -> None:
    async with tenant_session(db, tenant_a.tenant) as session:
        user = await find_user_by_email(session, email)
        assert user is not None
        principal = await principal_for_user(session, tenant_a.tenant, user.id)
        service = CustomerService(session, principal)
        for name, income in names_incomes:
            await service.create_customer({"name": name, "monthly_income": income})


async def test_list_works_without_javascript(
    new_context: NewContext, db: Database, tenant_a: TenantFixture, officer: str
) -> None:
    slug = tenant_a.slug
    tag = secrets.token_hex(4)
    small, large = f"无脚本{tag}甲", f"无脚本{tag}乙"
    await _seed_customers(db, tenant_a, officer, [(small, Decimal("1000.00")), (large, Decimal("2000.00"))])

    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, slug, officer)

    # A plain form POST, answered by a 303 to a GET whose URL holds the sealed term.
    await page.fill("#search", tag)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click("form.filters button[type=submit]")
    assert (await posted.value).status == 303
    await page.wait_for_url(lambda url: "q=" in urlsplit(url).query)
    assert tag not in page.url
    await expect(result_rows(page)).to_have_count(2)
    await expect(page.locator("#search")).to_have_value(tag)

    async def names_in_order() -> list[str]:
        return await result_rows(page).locator("td:first-child a").all_inner_texts()

    # Sort headers are plain links too: first click sorts descending, the second ascending.
    income_header = page.locator("#customer-results thead a[href*='sort=monthly_income']")
    await income_header.click()
    await page.wait_for_url(lambda url: "sort=monthly_income" in url and "direction=desc" in url)
    assert "q=" in urlsplit(page.url).query, "sorting dropped the search"
    await expect(page.locator("th[aria-sort=descending] a[href*='sort=monthly_income']")).to_have_count(1)
    assert await names_in_order() == [large, small]

    await page.locator("#customer-results thead a[href*='sort=monthly_income']").click()
    await page.wait_for_url(lambda url: "sort=monthly_income" in url and "direction=asc" in url)
    await expect(page.locator("th[aria-sort=ascending] a[href*='sort=monthly_income']")).to_have_count(1)
    assert await names_in_order() == [small, large]
    assert tag not in page.url
