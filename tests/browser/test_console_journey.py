"""An operator signs in to the platform console with a TOTP code and provisions a tenant, in Chromium.

Selectors use ids, data attributes and hrefs: the UI language follows the browser (zh-CN here).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tests.integration.console.helpers import make_operator

pytestmark = pytest.mark.browser


def path_is(expected: str) -> Callable[[str], bool]:
    return lambda url: urlsplit(url).path == expected


async def test_operator_signs_in_with_totp_and_provisions_a_tenant(
    page: Page, page_errors: list[str], http_errors: list[str], db, settings, screenshots_dir: Path
) -> None:
    operator = await make_operator(db, settings)
    slug = f"browser-{secrets.token_hex(3)}"

    await page.goto("/platform/")
    await page.wait_for_url(path_is("/platform/login"))  # no session: the console's own sign-in
    await page.fill("#email", operator.email)
    await page.fill("#password", operator.password)
    await page.click("#console-login button[type=submit]")
    await page.wait_for_url(path_is("/platform/login/code"))
    await page.fill("#code", operator.code())
    await page.click("#console-code button[type=submit]")
    await page.wait_for_url(path_is("/platform/"))
    await expect(page.locator("#tenants")).to_be_visible()

    await page.click("#provision-link")
    await page.wait_for_url(path_is("/platform/tenants/new"))
    await page.fill("#slug", slug)
    await page.fill("#name", "浏览器小贷")
    await page.fill("#admin_email", f"admin@{slug}.example")
    await page.click("#provision-form button[type=submit]")
    created = page.locator(f"#created[data-slug='{slug}']")
    await expect(created).to_be_visible()
    password = await page.locator("#admin-password").input_value()
    assert len(password) >= 16
    await page.screenshot(path=str(screenshots_dir / "console-provisioned.png"))

    await page.click("#created a[href='/platform/']")
    await page.wait_for_url(path_is("/platform/"))
    row = page.locator(f"#tenants tr[data-slug='{slug}']")
    await expect(row).to_be_visible()
    await expect(row.locator("[data-status='active']")).to_be_visible()
    await page.screenshot(path=str(screenshots_dir / "console-tenants.png"), full_page=True)

    # The new tenant's admin signs in with the password the console showed once.
    await page.goto(f"/t/{slug}/login")
    await page.fill("#email", f"admin@{slug}.example")
    await page.fill("#password", password)
    await page.click(f"form[action='/t/{slug}/login'] button[type=submit]")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))

    assert page_errors == []  # no CSP refusal, no script error
    assert http_errors == []
