"""A risk officer runs the early-warning rules, opens a case from a flag, plans a measure, ticks it
off in place and closes the case with an outcome.

Selectors use ids, hrefs and form actions rather than visible text: the UI language follows the
browser (zh-CN here) and its wording belongs to the message catalog.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import SCREENSHOT, path_is, seed_customer, sign_in
from tests.conftest import TenantFixture, add_user, make_tenant, principal_of

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def desk(lifecycle: TenantLifecycle) -> TenantFixture:
    """A tenant of its own: running the rules raises flags tenant-wide."""
    return await make_tenant(lifecycle, "riskjourney")


async def overdue_customer(db: Database, desk: TenantFixture) -> str:
    """A loan officer's customer whose loan started four months ago and was never repaid."""
    officer = await add_user(db, desk.tenant, "loan_officer")
    customer_id = await seed_customer(db, desk, officer)
    async with tenant_session(db, desk.tenant) as session:
        await LoanService(session, await principal_of(db, desk.tenant, officer)).create_loan(
            customer_id,
            {
                "product": "房抵经营贷",
                "amount": "300000",
                "annual_rate": "6%",
                "term_months": "24",
                "method": "equal_installment",
                "start_date": add_months(date.today(), -4).isoformat(),
            },
        )
    return customer_id


async def test_risk_officer_works_a_case_from_a_flag_to_its_outcome(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    desk: TenantFixture,
    screenshots_dir: Path,
) -> None:
    slug = desk.slug
    customer_id = await overdue_customer(db, desk)
    await sign_in(page, slug, await add_user(db, desk.tenant, "risk_officer"))

    await page.click(f"header a[href='/t/{slug}/risk']")
    await page.click(f"a[href='/t/{slug}/risk/warnings']")
    await page.click("#evaluate-form button[type=submit]")
    await page.wait_for_url(lambda url: "raised=" in url)
    await expect(page.locator("#evaluated")).to_be_visible()
    flag = page.locator("#warning-table tbody tr[data-kind=days_past_due]")
    await expect(flag).to_have_count(1)
    await expect(flag).to_contain_text("逾期")

    # The rule filter swaps the table only (htmx) and keeps the address bookmarkable.
    await page.select_option("#kind", "debt_to_income")
    await expect(page.locator("#warning-table tbody tr[data-kind=days_past_due]")).to_have_count(0)
    assert urlsplit(page.url).query == "kind=debt_to_income"
    await page.select_option("#kind", "days_past_due")
    await expect(flag).to_have_count(1)
    await page.screenshot(path=screenshots_dir / "risk-warnings.png", **SCREENSHOT)

    await flag.locator(f"a[href^='/t/{slug}/risk/cases/new?customer={customer_id}']").click()
    await page.wait_for_url(path_is(f"/t/{slug}/risk/cases/new"))
    await expect(page.locator("#description")).not_to_have_value("")  # the flag's reason
    await page.fill("#description", "三期未还，电话无人接听")
    await page.click("#case-form button[type=submit]")
    await page.wait_for_url(lambda url: "/risk/cases/" in url and "/new" not in url)
    case_path = urlsplit(page.url).path

    # A measure already past its deadline is highlighted.
    await page.fill("#measure-description", "上门核实经营情况")
    await page.fill("#due_on", (date.today() - timedelta(days=1)).isoformat())
    await page.click("#measure-form button[type=submit]")
    await page.wait_for_url(lambda url: urlsplit(url).path == case_path)
    row = page.locator("#measure-table tbody tr.measure")
    await expect(row).to_have_count(1)
    await expect(row).to_have_class("measure overdue")
    await page.screenshot(path=screenshots_dir / "risk-case.png", **SCREENSHOT)

    # Marking it done swaps the row in place.
    await row.locator("select[name=status]").select_option("done")
    async with page.expect_response(lambda r: "/risk/measures/" in r.url) as changed:
        await row.locator("button[type=submit]").click()
    response = await changed.value
    assert response.status == 200 and response.request.headers.get("hx-request") == "true"
    await expect(page.locator("#measure-table tbody tr[data-status=done]")).to_have_count(1)
    await expect(page.locator("#measure-table tbody tr.overdue")).to_have_count(0)
    assert urlsplit(page.url).path == case_path

    # Closing without an outcome is refused beside the field; with one, the case is closed.
    await page.select_option("#status", "closed")
    await page.click("#case-update-form button[type=submit]")
    await expect(page.locator("#outcome-error")).to_be_visible()
    await page.fill("#outcome", "客户补缴两期，剩余一期签订还款计划")
    await page.fill("#lessons", "放款前核实经营流水")
    await page.click("#case-update-form button[type=submit]")
    await expect(page.locator("#case-status.case-status-closed")).to_have_count(1)
    await expect(page.locator("#measure-form")).to_have_count(0)

    await page.click(f"a[href='/t/{slug}/risk']")
    await page.wait_for_url(path_is(f"/t/{slug}/risk"))
    await expect(page.locator("#column-closed article.risk-card")).to_have_count(1)
    await page.screenshot(path=screenshots_dir / "risk-board.png", **SCREENSHOT)

    assert page_errors == []
    assert http_errors == ["422 POST " + case_path]


async def test_a_case_is_opened_and_worked_without_javascript(
    new_context: NewContext, db: Database, desk: TenantFixture
) -> None:
    slug = desk.slug
    customer_id = await overdue_customer(db, desk)
    context = await new_context(java_script_enabled=False)
    page = await context.new_page()
    await sign_in(page, slug, await add_user(db, desk.tenant, "risk_officer"))
    await page.goto(f"/t/{slug}/risk/cases/new?customer={customer_id}")
    await page.click("#case-form button[type=submit]")
    await expect(page.locator("#description-error")).to_be_visible()
    await page.fill("#description", "外部征信显示新增诉讼")
    await page.select_option("#trigger", "external")
    await page.click("#case-form button[type=submit]")
    await page.wait_for_url(lambda url: "/risk/cases/" in url and "/new" not in url)
    await page.fill("#measure-description", "查询裁判文书")
    await page.fill("#due_on", (date.today() + timedelta(days=3)).isoformat())
    await page.click("#measure-form button[type=submit]")
    row = page.locator("#measure-table tbody tr.measure")
    await row.locator("select[name=status]").select_option("in_progress")
    await row.locator("button[type=submit]").click()
    await expect(page.locator("#measure-table tbody tr[data-status=in_progress]")).to_have_count(1)
