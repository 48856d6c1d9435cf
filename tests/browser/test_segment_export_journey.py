"""A manager builds a segment, saves it and exports it in a real browser: the downloaded .xlsx opens
with openpyxl and holds the segment's customers with their personal data masked, never in clear.

(The live count, nested groups and the chart are in test_segment_journey.) Selectors use names,
ids and hrefs, not wording.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.async_api import Page, expect

from tenantcrm.database import Database
from tenantcrm.settings import Settings
from tests.browser.test_find_customer_journey import create_customers, fresh_phone
from tests.browser.test_lending_journey import sign_in
from tests.conftest import TenantFixture, add_user, make_tenant
from tests.integration.retention.helpers import fresh_id

pytestmark = pytest.mark.browser


@pytest.fixture
async def shop(lifecycle) -> TenantFixture:
    """A tenant of this test alone, so the segment holds exactly what it made."""
    return await make_tenant(lifecycle, "segexport")


async def test_manager_saves_and_exports_a_segment_with_masked_values(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    settings: Settings,
    shop: TenantFixture,
    tmp_path: Path,
) -> None:
    slug = shop.slug
    manager = await add_user(db, shop.tenant, "manager")
    people = [
        (f"出口客户{secrets.token_hex(3)}", risk, fresh_phone(), fresh_id())
        for risk in ("high", "high", "low")
    ]
    await create_customers(
        db,
        settings,
        shop.tenant,
        manager,
        *({"name": n, "risk_level": r, "phone": p, "national_id": i} for n, r, p, i in people),
    )
    await sign_in(page, slug, manager)

    await page.goto(f"/t/{slug}/segments/new")
    await expect(page.locator("#segment-count")).to_have_text("3")
    await page.click("button[value='add_condition:g0']")
    await page.select_option("select[name='g0.c0.value']", "high")
    await expect(page.locator("#segment-count")).to_have_text("2")
    await page.fill("#segment-name", "高风险客户导出")
    await page.click("button[name='action'][value='save']")
    await page.wait_for_url(re.compile(rf"/t/{slug}/segments/[0-9a-f-]{{36}}"))
    await expect(page.locator("#segment-saved-count")).to_be_visible()

    export = page.locator("a[href$='/export.xlsx']")
    async with page.expect_download() as downloaded:
        await export.click()
    download = await downloaded.value
    assert re.fullmatch(r"segment-\d{8}\.xlsx", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)

    sheet = load_workbook(str(saved), read_only=True).active
    cells = [[str(v) if v is not None else "" for v in row] for row in sheet.iter_rows(values_only=True)]
    text = "\n".join("\t".join(row) for row in cells)
    assert len(cells) == 3, text  # a header row and the two high-risk customers
    for name, risk, phone, national_id in people:
        assert (name in text) == (risk == "high")
        assert phone not in text and national_id not in text  # never in clear
        if risk == "high":
            assert f"{phone[:3]}****{phone[7:]}" in text
            assert f"{national_id[:4]}**********{national_id[-4:]}" in text

    assert page_errors == []
    assert http_errors == []
