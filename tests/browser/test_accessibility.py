"""Keyboard and screen-reader basics of the main forms, in a real browser: every form field has an
accessible name (Chromium's own accessibility tree, as a screen reader gets it), every field is
reached with the Tab key, and whatever the keyboard focuses shows a visible outline.

The pages: sign-in, the customer list (filters, columns, save view), a new customer, a customer's
loan form and "log contact", the segment builder, the loan list, inviting a user, retention
policies and the import upload. Details that hide form fields are opened first. And the main
pages at a tablet's width: no sideways scrolling of the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.async_api import Page

from tenantcrm.database import Database
from tests.browser.conftest import NewContext
from tests.browser.test_lending_journey import seed_customer, sign_in
from tests.conftest import TenantFixture, add_user

pytestmark = pytest.mark.browser

FIELD_ROLES = "textbox|searchbox|combobox|listbox|checkbox|radio|spinbutton|slider|switch"
UNNAMED = re.compile(rf"^\s*- ({FIELD_ROLES})(?=$|:| \[)")
MAX_TABS = 200

# Every element the keyboard reaches: what it is, whether it is a form field, and its focus outline.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const field = el.matches('input:not([type=hidden]), select, textarea');
  // A JS property, not markup: tells an element seen before from a new one with the same name.
  el.tabProbe = el.tabProbe || (window.tabProbes = (window.tabProbes || 0) + 1);
  return {
    probe: el.tabProbe,
    key: el.id || el.name || el.outerHTML.slice(0, 80),
    field,
    describe: el.outerHTML.slice(0, 160),
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    ring: style.boxShadow !== 'none',
  };
}"""
# The form fields a user can see and use, to compare with what Tab reached.
VISIBLE_FIELDS = """(root) => [...root.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !el.disabled && el.getClientRects().length > 0)
  .filter(el => getComputedStyle(el).visibility !== 'hidden')
  .map(el => el.id || el.name || el.outerHTML.slice(0, 80))"""


@dataclass(frozen=True)
class Form:
    path: str
    opens: tuple[str, ...] = ()  # <summary> or buttons to click first (closed disclosures)


async def unnamed_fields(page: Page) -> list[str]:
    snapshot = await page.locator("main").aria_snapshot()
    return [line.strip() for line in snapshot.splitlines() if UNNAMED.match(line)]


async def tab_through(page: Page) -> tuple[set[str], list[str]]:
    """Tab from the top of main until focus leaves the page; the fields reached, and every focused
    element that showed no outline."""
    # A click on main's bare top-left corner puts the keyboard's starting point there, past the
    # header's links (blur() would not: Tab would go on from the last focused field).
    await page.evaluate("() => window.scrollTo(0, 0)")
    box = await page.locator("main").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + 2, box["y"] + 2)
    reached: set[str] = set()
    no_outline: list[str] = []
    seen: set[int] = set()
    last = None
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is not None and focused["probe"] == last:
            continue  # Tab moves within a date box (year, month, day): still the same field
        if focused is None or focused["probe"] in seen:
            break
        seen.add(last := focused["probe"])
        if focused["field"]:
            reached.add(focused["key"])
        if not (focused["outline"] or focused["ring"]):
            no_outline.append(focused["describe"])
    return reached, no_outline


async def check(page: Page, form: Form) -> list[str]:
    await page.goto(form.path)
    for selector in form.opens:
        await page.click(selector)
    problems = [f"{form.path}: no accessible name: {line}" for line in await unnamed_fields(page)]
    reached, no_outline = await tab_through(page)
    visible = set(await page.locator("main").evaluate(VISIBLE_FIELDS))
    problems += [f"{form.path}: not reached with Tab: {key}" for key in sorted(visible - reached)]
    problems += [f"{form.path}: focus without a visible outline: {html}" for html in no_outline]
    return problems


async def test_main_forms_are_labelled_reachable_by_keyboard_and_show_focus(
    page: Page, page_errors: list[str], db: Database, tenant_a: TenantFixture
) -> None:
    slug = tenant_a.slug
    problems = await check(page, Form(f"/t/{slug}/login"))

    manager = await add_user(db, tenant_a.tenant, "manager")
    customer_id = await seed_customer(db, tenant_a, manager)
    await sign_in(page, slug, tenant_a.admin_email)
    for form in (
        Form(f"/t/{slug}/customers", ("details.columns-chooser > summary", "#save-view > summary")),
        Form(f"/t/{slug}/customers/new"),
        Form(f"/t/{slug}/customers/{customer_id}?tab=loans", ("#log-contact > summary",)),
        Form(f"/t/{slug}/segments/new", ("button[value='add_condition:g0']",)),
        Form(f"/t/{slug}/loans"),
        Form(f"/t/{slug}/settings/users"),
        Form(f"/t/{slug}/settings/retention"),
        Form(f"/t/{slug}/imports"),
    ):
        problems += await check(page, form)
    assert not problems, "\n".join(problems)
    assert page_errors == []


TABLET = {"width": 820, "height": 1180}  # a 10-inch tablet held upright


async def test_main_pages_fit_a_tablet_without_sideways_scrolling(
    new_context: NewContext, db: Database, tenant_a: TenantFixture
) -> None:
    """Wide tables scroll inside their own box; the page itself never scrolls sideways."""
    slug = tenant_a.slug
    customer_id = await seed_customer(db, tenant_a, tenant_a.admin_email)
    context = await new_context(viewport=TABLET)
    page = await context.new_page()
    await sign_in(page, slug, tenant_a.admin_email)
    wide = []
    for path in (
        f"/t/{slug}/customers",
        f"/t/{slug}/customers/{customer_id}",
        f"/t/{slug}/customers/new",
        f"/t/{slug}/loans",
        f"/t/{slug}/dashboard",
        f"/t/{slug}/my-day",
        f"/t/{slug}/segments/new",
        f"/t/{slug}/settings/roles",
    ):
        await page.goto(path)
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            wide.append(f"{path}: {overflow}px wider than the screen")
    assert not wide, "\n".join(wide)
