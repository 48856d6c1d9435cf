"""A tenant admin sets a retention policy in a real browser and reviews a dry run: a refused period is
marked on its row, the saved policy shows, the dry run counts the one aged prospect without changing
anything, and "Run now" asks for confirmation first. Selectors use ids and names, not wording.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.settings import Settings
from tests.browser.test_lending_journey import SCREENSHOT, path_is, sign_in
from tests.conftest import TenantFixture, make_tenant, principal_of
from tests.integration.retention.helpers import fingerprint, seed_customer

pytestmark = pytest.mark.browser


@pytest.fixture
async def office(lifecycle) -> TenantFixture:
    """A tenant of this test alone: its policies and counts are exactly what it set."""
    return await make_tenant(lifecycle, "retain")


async def test_admin_sets_a_policy_and_reviews_a_dry_run(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    settings: Settings,
    office: TenantFixture,
    screenshots_dir: Path,
) -> None:
    slug = office.slug
    admin = await principal_of(db, office.tenant, office.admin_email)
    await seed_customer(db, settings, office.tenant, admin, status="prospect")  # 1000 days old
    await seed_customer(db, settings, office.tenant, admin, status="prospect", aged=False)
    await seed_customer(db, settings, office.tenant, admin, status="prospect", legal_hold=True)

    await sign_in(page, slug, office.admin_email)
    await page.click(f"header a[href='/t/{slug}/settings']")
    await page.click(f"nav.subnav a[href='/t/{slug}/settings/retention']")
    await page.wait_for_url(path_is(f"/t/{slug}/settings/retention"))

    # A period below the minimum is refused on its row; nothing is saved.
    period = page.locator("input[name='prospects.period_days']")
    await period.fill("7")
    await page.select_option("select[name='prospects.action']", "delete")
    await page.check("input[name='prospects.enabled']")
    await page.click("#retention-policies-form button[type=submit]")
    await expect(page.locator("#policy-prospects.is-invalid #prospects-period-error")).to_be_visible()
    await expect(period).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("input[name='prospects.enabled']")).to_be_checked()  # as typed

    await period.fill("365")
    await page.click("#retention-policies-form button[type=submit]")
    await page.wait_for_url(lambda url: "saved=1" in urlsplit(url).query)
    await expect(page.locator("input[name='prospects.period_days']")).to_have_value("365")
    await expect(page.locator("input[name='prospects.enabled']")).to_be_checked()

    # The dry run comes in beside the buttons (htmx) and counts the aged prospect alone: the recent
    # one is inside the period, the one on legal hold is exempt.
    before = await fingerprint(db, office.tenant)
    async with page.expect_response(lambda r: r.url.endswith("/settings/retention/dry-run")) as ran:
        await page.click(f"form[action='/t/{slug}/settings/retention/dry-run'] button[type=submit]")
    response = await ran.value
    assert response.status == 200 and response.request.headers.get("hx-request") == "true"
    await expect(page.locator("#plan-prospects td.num")).to_have_text("1")
    assert urlsplit(page.url).path == f"/t/{slug}/settings/retention"
    await page.screenshot(path=str(screenshots_dir / "retention-dry-run.png"), **SCREENSHOT)

    # "Run now" shows the same counts and asks; cancelling changes nothing.
    await page.click(f"form[action='/t/{slug}/settings/retention/run'] button[type=submit]")
    confirm = page.locator("form.retention-confirm")
    await expect(confirm.locator("input[name=confirm][value=yes]")).to_have_count(1)
    await expect(page.locator("#plan-prospects td.num")).to_have_text("1")
    await confirm.locator(f"a[href='/t/{slug}/settings/retention']").click()
    await page.wait_for_url(path_is(f"/t/{slug}/settings/retention"))
    await expect(page.locator("#retention-runs")).to_have_count(0)  # no run yet
    after = await fingerprint(db, office.tenant)
    changed = sorted(table for table in before if before[table] != after[table])
    assert changed == [], f"the dry run changed {changed}"

    assert page_errors == []
    assert http_errors == [f"422 POST /t/{slug}/settings/retention"]
