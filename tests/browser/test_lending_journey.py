"""A loan officer books a secured loan in a real browser, sees it fall overdue and brings it current.

Selectors use ids, hrefs and form actions rather than visible text: the UI language follows the
browser (zh-CN here) and its wording belongs to the message catalog.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.auth.service import find_user_by_email, principal_for_user
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.loans.schedule import add_months
from tenantcrm.tenancy.session import tenant_session
from tests.browser.conftest import NewContext
from tests.conftest import PASSWORD, TenantFixture, add_user

pytestmark = pytest.mark.browser

# Screenshots keep the caret: hiding it makes Playwright leave style="" on the page's inputs, which
# htmx then copies onto the next page's inputs of the same id, and the CSP refuses that inline style.
SCREENSHOT = {"full_page": True, "caret": "initial"}


@pytest.fixture
async def officer(db: Database, tenant_a: TenantFixture) -> str:
    return await add_user(db, tenant_a.tenant, "loan_officer")


async def seed_customer(db: Database, tenant_a: TenantFixture, email: str) -> str:
    async with tenant_session(db, tenant_a.tenant) as session:
        user = await find_user_by_email(session, email)
        assert user is not None
        principal = await principal_for_user(session, tenant_a.tenant, user.id)
        customer = await CustomerService(session, principal).create_customer(
            {"name": f"房抵客户{secrets.token_hex(3)}", "monthly_income": "30000"}
        )
        return str(customer.id)


def path_is(expected: str) -> Callable[[str], bool]:
    return lambda url: urlsplit(url).path == expected


async def sign_in(page: Page, slug: str, email: str) -> None:
    await page.goto(f"/t/{slug}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click(f"form[action='/t/{slug}/login'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))


def yuan(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.]", "", text))


async def test_officer_secures_a_loan_and_clears_its_arrears(
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

    # The collateral tab comes in by htmx, and the address follows it.
    async with page.expect_response(lambda r: "tab=collateral" in r.url) as loaded:
        await page.click("#tab-collateral")
    assert (await loaded.value).request.headers.get("hx-target") == "customer-tabs"
    await page.wait_for_url(lambda url: "tab=collateral" in url)
    await expect(page.locator("#tab-collateral[aria-current=page]")).to_be_visible()

    await page.select_option("#kind", "residence")
    await page.fill("#description", "三居室 120㎡")
    await page.fill("#location", "南山区科技园")
    await page.fill("#appraised_value", "4000000")
    await page.click("#new-collateral button[type=submit]")
    await page.wait_for_url(lambda url: "tab=collateral" in url and urlsplit(url).path == customer_path)
    await expect(page.locator("#collateral tbody tr")).to_have_count(1)
    await expect(page.locator("#collateral")).to_contain_text("4,000,000.00")

    # A loan that started four months ago: three instalments are already overdue.
    await page.click("#tab-loans")
    await page.wait_for_url(lambda url: "tab=loans" in url)
    start = add_months(date.today(), -4)
    await page.fill("#product", "房抵经营贷")
    await page.fill("#amount", "36万")
    await page.fill("#annual_rate", "4.9")
    await page.fill("#term_months", "12")
    await page.select_option("#method", "equal_installment")
    await page.fill("#start_date", start.isoformat())
    await page.check("#new-loan input[name=collateral_ids]")

    # The preview fills in beside the form (htmx), and the form keeps what was typed.
    async with page.expect_response(lambda r: r.url.endswith("/loans/preview")) as previewed:
        await page.click("#preview-schedule")
    assert (await previewed.value).status == 200
    await expect(page.locator("#preview-schedule-table tbody tr")).to_have_count(12)
    await expect(page.locator("#product")).to_have_value("房抵经营贷")
    await page.screenshot(path=screenshots_dir / "loan-preview.png", **SCREENSHOT)

    await page.click("#new-loan button.primary[type=submit]")
    await page.wait_for_url(re.compile(rf"/t/{re.escape(slug)}/loans/[0-9a-f-]{{36}}$"))
    loan_path = urlsplit(page.url).path
    await expect(page.locator("#schedule-table tbody tr")).to_have_count(12)
    await expect(page.locator("#schedule-table tr.row-overdue")).to_have_count(3)
    assert int(await page.locator("#dpd").inner_text()) > 60
    await expect(page.locator("#ltv")).to_have_text("9.00%")  # 360,000 over 4,000,000
    await page.screenshot(path=screenshots_dir / "loan-overdue.png", **SCREENSHOT)

    # Paying the overdue amount brings the loan current.
    overdue = yuan(await page.locator("#overdue-amount").inner_text())
    assert overdue > 0
    await page.fill("#amount", str(overdue))
    await page.select_option("#channel", "bank_transfer")
    await page.fill("#reference", "回单 0001")
    await page.click("#repayment-form button[type=submit]")
    await page.wait_for_url(lambda url: urlsplit(url).path == loan_path)
    await expect(page.locator("#dpd")).to_have_text("0")
    await expect(page.locator("#schedule-table tr.row-overdue")).to_have_count(0)
    await expect(page.locator("#schedule-table tr.row-paid")).to_have_count(3)
    await expect(page.locator("#repayments-table tbody tr")).to_have_count(1)
    await page.screenshot(path=screenshots_dir / "loan-current.png", **SCREENSHOT)

    # The portfolio lists it as current.
    await page.click(f"header a[href='/t/{slug}/loans']")
    await page.wait_for_url(path_is(f"/t/{slug}/loans"))
    await expect(page.locator(f"#loan-results a[href='{loan_path}']")).to_have_count(1)

    assert page_errors == []
    assert http_errors == []


async def test_tabs_work_without_javascript(
    new_context: NewContext, db: Database, tenant_a: TenantFixture, officer: str
) -> None:
    slug = tenant_a.slug
    customer_id = await seed_customer(db, tenant_a, officer)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, slug, officer)
    await page.goto(f"/t/{slug}/customers/{customer_id}")
    await page.click("#tab-financials")
    await page.wait_for_url(lambda url: "tab=financials" in url)
    await expect(page.locator("#exposure")).to_be_visible()
    await page.click("#tab-loans")
    await page.wait_for_url(lambda url: "tab=loans" in url)
    await expect(page.locator("#new-loan")).to_be_visible()
    # A refused form comes back in place, with its message beside the field.
    await page.click("#new-loan button.primary[type=submit]")
    await expect(page.locator("#product-error")).to_be_visible()
    await expect(page.locator("#product")).to_have_attribute("aria-invalid", "true")
