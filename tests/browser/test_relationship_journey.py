"""An officer's day in a real browser: log a call with a follow-up, find it in My day, import a small
sheet with a bad row, then read the dashboard with its charts.

Import jobs run on the real queue: the live server runs no worker (tests keep TENANTCRM_RUN_JOBS
off), so the test takes the queued job with `run_pending` while the page polls its progress.
Selectors use ids, hrefs and form actions, not wording (the UI language follows the browser).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.jobs.worker import run_pending
from tenantcrm.loans.schedule import add_months
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.settings import Settings
from tests.browser.test_contact_journey import log_contact
from tests.browser.test_lending_journey import SCREENSHOT, path_is, sign_in
from tests.conftest import TenantFixture, add_user, make_tenant
from tests.integration.imports.sheets import people, xlsx
from tests.integration.web.test_lending_pages import Book

pytestmark = pytest.mark.browser


@pytest.fixture
async def branch(lifecycle) -> TenantFixture:
    """A tenant of this test alone, so the dashboard's figures are exactly what it made."""
    return await make_tenant(lifecycle, "branch")


async def run_jobs(db: Database, settings: Settings) -> None:
    """Take every queued job, as `tenantcrm worker` would."""
    await run_pending(db, master_key_ring(settings))


async def test_officer_logs_a_call_imports_a_sheet_and_reads_the_dashboard(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    settings: Settings,
    branch: TenantFixture,
    screenshots_dir: Path,
    tmp_path: Path,
) -> None:
    slug = branch.slug
    officer = await add_user(db, branch.tenant, "loan_officer")
    book = Book(db, branch.tenant, officer)
    late = await book.customer(region_code="310000", credit_grade="BB")
    await book.loan(late, amount="240000", start_date=add_months(date.today(), -3).isoformat())
    await sign_in(page, slug, officer)

    # A call with a follow-up due today, which My day then lists.
    customer_path = f"/t/{slug}/customers/{late}"
    await log_contact(page, customer_path, "电话催收，客户承诺本周内补缴", "周五前核实到账")
    await page.click(f"header a[href='/t/{slug}/my-day']")
    await page.wait_for_url(path_is(f"/t/{slug}/my-day"))
    await expect(page.locator(f"#due-today a[href='{customer_path}?tab=timeline']")).to_have_count(1)

    # Import: three good rows and one with an identity number that fails its check digit.
    rows = people(3, start=7000)
    bad = people(1, start=7100)[0]
    bad[2] = bad[2][:-1] + ("0" if bad[2][-1] != "0" else "1")
    sheet = tmp_path / "客户名单.xlsx"
    sheet.write_bytes(xlsx([*rows, bad]))
    await page.goto(f"/t/{slug}/imports")
    await page.set_input_files("#file", str(sheet))
    await page.click(f"form[action='/t/{slug}/imports'] button[type=submit]")
    await page.wait_for_url(re.compile(rf"/t/{slug}/imports/[0-9a-f-]{{36}}$"))
    job_path = page.url.split("://", 1)[1].split("/", 1)[1]
    await page.click(f"form[action='/{job_path}/mapping'] button[type=submit]")
    await expect(page.locator("#import-progress")).to_be_visible()
    await run_jobs(db, settings)  # staging: the polling page reloads itself when it is done
    commit_form = page.locator(f"form[action='/{job_path}/commit']")
    await expect(commit_form).to_be_visible()
    async with page.expect_download() as report:
        await page.click(f"a[href='/{job_path}/report.xlsx']")
    saved = tmp_path / "report.xlsx"
    await (await report.value).save_as(saved)
    workbook = load_workbook(str(saved))
    assert workbook.active.max_row == 2  # the header and the one refused row, by its row number
    await commit_form.locator("input[name=mode][value=skip_invalid]").check()
    await commit_form.locator("button[type=submit]").click()
    await expect(page.locator("#import-progress")).to_be_visible()  # queued: no worker runs it yet
    await run_jobs(db, settings)
    await expect(page.locator(f"#main a[href='/t/{slug}/customers']")).to_be_visible()  # done

    # The dashboard: KPIs on the page, and every chart drawn by ECharts from the JSON endpoint.
    await page.click(f"nav.mainnav a[href='/t/{slug}/dashboard']")
    await page.wait_for_url(re.compile(rf"/t/{slug}/dashboard$"))
    await expect(page.locator("#kpi-customers")).to_have_text("4")  # one of ours, three imported
    await expect(page.locator("#kpi-follow-ups")).to_have_text("1")
    await expect(page.locator(f"#due-today a[href='{customer_path}']")).to_have_count(1)
    for chart in ("creditGrades", "classes", "trend", "regions"):
        drawn = page.locator(f"[data-chart='{chart}'][data-drawn='true'] canvas")
        await expect(drawn.first).to_be_visible()
    await page.screenshot(path=str(screenshots_dir / "dashboard-after-import.png"), **SCREENSHOT)
    assert not page_errors, page_errors
    assert not http_errors, http_errors
