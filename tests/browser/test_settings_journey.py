"""A tenant admin edits the permission matrix in a real browser; a loan officer feels it at once.

Selectors use ids, data attributes, hrefs and values rather than visible text: the UI language
follows the browser (zh-CN here) and its wording belongs to the message catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.tenancy.provisioning import TenantLifecycle
from tests.browser.conftest import NewContext
from tests.conftest import PASSWORD, TenantFixture, add_user, make_tenant

pytestmark = pytest.mark.browser


@pytest.fixture
async def org(lifecycle: TenantLifecycle) -> TenantFixture:
    """A tenant of this test alone: it changes a built-in role's permissions."""
    return await make_tenant(lifecycle, "matrix")


def path_is(expected: str) -> Callable[[str], bool]:
    return lambda url: urlsplit(url).path == expected


async def sign_in(page: Page, slug: str, email: str) -> None:
    await page.goto(f"/t/{slug}/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click(f"form[action='/t/{slug}/login'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))


async def save_row(page: Page, slug: str, role: str) -> None:
    """Press the row's save button and wait for htmx to swap the row back in, marked saved."""
    row = page.locator(f"#matrix tr[data-role='{role}']")
    async with page.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path.startswith(f"/t/{slug}/settings/roles/")
    ) as posted:
        await row.locator("button[type=submit][form^='role-form-']").click()
    response = await posted.value
    assert response.status == 200
    assert response.request.headers.get("hx-request") == "true"  # htmx, not a full-page post
    await expect(page.locator(f"#matrix tr[data-role='{role}'] .saved[role=status]")).to_be_visible()


async def test_admin_takes_customer_writing_from_loan_officers_and_gives_it_back(
    page: Page,
    new_context: NewContext,
    page_errors: list[str],
    http_errors: list[str],
    db,
    org: TenantFixture,
    screenshots_dir: Path,
) -> None:
    slug = org.slug
    officer_email = await add_user(db, org.tenant, "loan_officer")

    # The admin finds the matrix through the main navigation and the settings sub-navigation.
    await sign_in(page, slug, org.admin_email)
    await page.click(f"header a[href='/t/{slug}/settings']")
    await page.wait_for_url(path_is(f"/t/{slug}/settings/users"))
    await page.click(f"nav.subnav a[href='/t/{slug}/settings/roles']")
    await page.wait_for_url(path_is(f"/t/{slug}/settings/roles"))

    admin_row = page.locator("#matrix tr[data-role='admin']")
    await expect(admin_row.locator("input[type=checkbox]:not([disabled])")).to_have_count(0)
    await expect(admin_row.locator("input[type=checkbox][value='customers.write']")).to_be_checked()

    write = page.locator("#matrix tr[data-role='loan_officer'] input[value='customers.write']")
    await expect(write).to_be_checked()
    await write.uncheck()
    await save_row(page, slug, "loan_officer")
    assert urlsplit(page.url).path == f"/t/{slug}/settings/roles"  # only the row was swapped
    await expect(write).not_to_be_checked()  # the swapped-in row shows what was stored
    await page.screenshot(path=screenshots_dir / "settings-roles-matrix.png", full_page=True)

    # A loan officer, in a browser of their own, is no longer offered "New customer".
    officer_context = await new_context()
    officer = await officer_context.new_page()
    await sign_in(officer, slug, officer_email)
    new_customer = officer.locator(f"main a[href='/t/{slug}/customers/new']")
    await expect(officer.locator("#customer-results")).to_be_visible()
    await expect(new_customer).to_have_count(0)
    await expect(officer.locator(f"header a[href='/t/{slug}/settings']")).to_have_count(0)

    # Ticking it again (in the row htmx swapped in) gives it back.
    await write.check()
    await save_row(page, slug, "loan_officer")
    await expect(write).to_be_checked()
    await officer.reload()
    await expect(new_customer).to_have_count(1)

    assert page_errors == []
    assert http_errors == []
