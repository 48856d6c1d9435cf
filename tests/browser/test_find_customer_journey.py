"""An officer finds customers by phone and by identity number, and adds an individual and an
enterprise customer whose refused identity numbers are marked beside the field.

(Finding by a part of the name, and signing in and out, are in test_customer_journey.) Selectors use
ids, names and form actions, not wording: the UI language follows the browser (zh-CN here).
"""

from __future__ import annotations

import re
import secrets
import uuid
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, expect

from tenantcrm.customers.identity import _USCC_ALPHABET, _USCC_WEIGHTS
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.settings import Settings
from tenantcrm.tenancy.session import tenant_session
from tests.browser.test_lending_journey import path_is, sign_in
from tests.conftest import TenantFixture, add_user, principal_of
from tests.integration.retention.helpers import fresh_id

pytestmark = pytest.mark.browser


def credit_code() -> str:
    """A fresh, valid unified social credit code (GB 32100 check character)."""
    body = "9131" + "".join(secrets.choice("0123456789") for _ in range(6)) + uuid.uuid4().hex[:10].upper()
    body = "".join(c if c in _USCC_ALPHABET else "A" for c in body)[:17]
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_ALPHABET[(31 - total % 31) % 31]


def fresh_phone() -> str:
    return f"139{secrets.randbelow(10**8):08d}"


async def create_customers(db: Database, settings: Settings, tenant, email: str, *rows: dict) -> list:
    """Customers made through the service as the user `email`, personal data encrypted and masked."""
    async with tenant_session(db, tenant) as session:
        service = CustomerService(
            session,
            await principal_of(db, tenant, email),
            cipher_source(db, master_key_ring(settings), tenant),
        )
        return [await service.create_customer(row) for row in rows]


async def search(page: Page, slug: str, term: str) -> None:
    """Type into the search box and wait for the results htmx swaps in."""
    async with page.expect_response(
        lambda r: r.request.method == "POST" and urlsplit(r.url).path == f"/t/{slug}/customers"
    ) as searched:
        await page.fill("#search", term)
    assert (await searched.value).status == 200


def rows(page: Page):
    return page.locator("#customer-results tbody tr")


async def test_officer_finds_customers_by_phone_and_by_identity_number(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    settings: Settings,
    tenant_a: TenantFixture,
) -> None:
    slug = tenant_a.slug
    officer = await add_user(db, tenant_a.tenant, "loan_officer")
    phone, national_id = fresh_phone(), fresh_id()
    by_phone, by_id = await create_customers(
        db,
        settings,
        tenant_a.tenant,
        officer,
        {"name": f"电话客户{secrets.token_hex(3)}", "phone": phone},
        {"name": f"证件客户{secrets.token_hex(3)}", "national_id": national_id},
    )
    await sign_in(page, slug, officer)

    # A phone as people write it: spaces between the groups. Found through its blind index.
    await search(page, slug, f"{phone[:3]} {phone[3:7]} {phone[7:]}")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).locator(f"a[href='/t/{slug}/customers/{by_phone.id}']")).to_have_count(1)
    await expect(rows(page).locator("td.pii")).to_have_text(f"{phone[:3]}****{phone[7:]}")  # masked

    # An identity number with a lower-case check letter is the same number.
    await search(page, slug, national_id.lower())
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).locator(f"a[href='/t/{slug}/customers/{by_id.id}']")).to_have_count(1)
    await page.wait_for_url(lambda url: "q=" in urlsplit(url).query)
    for clear in (phone, national_id, national_id.lower(), phone[3:7]):
        assert clear not in page.url  # the sealed term only

    # A whole number that is nobody's finds nobody (an exact match, never a fragment).
    await search(page, slug, fresh_phone())
    await expect(rows(page).locator("td.empty")).to_have_count(1)

    assert page_errors == []
    assert http_errors == []


async def test_officer_adds_an_individual_and_an_enterprise_with_inline_errors(
    page: Page,
    page_errors: list[str],
    http_errors: list[str],
    db: Database,
    tenant_a: TenantFixture,
) -> None:
    slug = tenant_a.slug
    await sign_in(page, slug, await add_user(db, tenant_a.tenant, "loan_officer"))
    new = f"/t/{slug}/customers/new"

    # An individual whose resident ID fails its check digit and whose phone is not a phone.
    await page.goto(new)
    good_id = fresh_id()
    bad_id = good_id[:17] + ("0" if good_id[17] != "0" else "1")
    await page.fill("#name", f"个人客户{secrets.token_hex(3)}")
    await page.fill("#national_id", bad_id)
    await page.fill("#phone", "12345")
    await page.click("form.customer-form button[type=submit]")
    for field in ("national_id", "phone"):
        await expect(page.locator(f"#{field}-error.field-error")).to_be_visible()
        await expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#name")).not_to_have_attribute("aria-invalid", "true")
    await expect(page.locator("main .alert[role=alert]")).to_be_visible()
    await page.fill("#national_id", good_id)
    await page.fill("#phone", fresh_phone())
    await page.click("form.customer-form button[type=submit]")
    await page.wait_for_url(re.compile(rf"/t/{re.escape(slug)}/customers/[0-9a-f-]{{36}}$"))
    # Birth date and gender come from the resident ID.
    await expect(page.locator("dl.facts")).to_contain_text(
        f"{good_id[6:10]}-{good_id[10:12]}-{good_id[12:14]}"
    )

    # An enterprise: the individual-only fields are hidden, a resident ID is not a credit code.
    await page.goto(new)
    await page.check("input[name=kind][value=enterprise]")
    await expect(page.locator(".individual-only")).to_be_hidden()
    name = f"企业客户{secrets.token_hex(3)}有限公司"
    await page.fill("#name", name)
    await page.fill("#national_id", fresh_id())
    await page.fill("#industry", "制造业")
    await page.click("form.customer-form button[type=submit]")
    await expect(page.locator("#national_id-error.field-error")).to_be_visible()
    await expect(page.locator("input[name=kind][value=enterprise]")).to_be_checked()  # kept as typed
    await expect(page.locator("#name")).to_have_value(name)
    code = credit_code()
    await page.fill("#national_id", code)
    await page.click("form.customer-form button[type=submit]")
    await page.wait_for_url(re.compile(rf"/t/{re.escape(slug)}/customers/[0-9a-f-]{{36}}$"))
    await expect(page.locator("main h1")).to_contain_text(name)
    await expect(page.locator("main")).to_contain_text(f"{code[:4]}**********{code[-4:]}")  # masked

    # Both are in the list.
    await page.goto(f"/t/{slug}/customers")
    await page.wait_for_url(path_is(f"/t/{slug}/customers"))
    await search(page, slug, name)
    await expect(rows(page)).to_have_count(1)

    assert page_errors == []
    assert http_errors == [f"422 POST {new}", f"422 POST {new}"]
