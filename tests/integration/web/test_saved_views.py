"""Saved views of the customer list: columns, filters and order saved per user, one default, nobody
else's to see or change; and the sortable loan list paging correctly in each order."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.loans.service import LoanService
from tenantcrm.saved_views.models import SavedView
from tenantcrm.saved_views.service import MAX_VIEWS, SavedViewNotFound, SavedViewService
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.web.test_customer_pages import csrf
from tests.integration.web.test_lending_pages import Book


@pytest.fixture
async def officer(client, db, tenant_a) -> str:
    """A loan officer of tenant A, signed in on `client`."""
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    return email


VIEW = {
    "columns": ["name", "monthly_income", "risk_level"],
    "filters": {"risk_level": "high"},
    "sort": "monthly_income",
    "direction": "asc",
}


def header_cells(html: str) -> list[str]:
    head = re.search(r'<table class="grid" id="customer-table">\s*<thead>(.*?)</thead>', html, re.S)
    assert head, "no customer table"
    return re.findall(r"<th scope=\"col\"", head.group(1))


async def count_views(db, tenant) -> int:
    async with tenant_session(db, tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(SavedView)) or 0)


async def test_a_view_is_saved_applied_and_opened_by_default(client, db, tenant_a, officer):
    slug = tenant_a.slug
    name = f"高风险 {uuid.uuid4().hex[:6]}"
    posted = await client.post(
        f"/t/{slug}/customers/views",
        data={
            **csrf(client),
            "name": name,
            "cols": ["name", "monthly_income", "risk_level"],
            "risk_level": "high",
            "sort": "monthly_income",
            "direction": "asc",
            "is_default": "on",
        },
        follow_redirects=False,
    )
    assert posted.status_code == 303
    query = parse_qs(urlsplit(posted.headers["location"]).query)
    assert query == {
        "risk_level": ["high"],
        "sort": ["monthly_income"],
        "direction": ["asc"],
        "cols": ["name,monthly_income,risk_level"],
    }
    applied = await client.get(posted.headers["location"])
    assert len(header_cells(applied.text)) == 3
    assert 'aria-current="true" data-view="' in applied.text  # the view is marked as the one shown
    assert name in applied.text

    # With no parameters the list opens with the default view; the standard view stays a click away.
    opened = await client.get(f"/t/{slug}/customers")
    assert len(header_cells(opened.text)) == 3
    assert '<option value="high" selected>' in opened.text
    assert 'aria-sort="ascending"' in opened.text
    standard = await client.get(f"/t/{slug}/customers?sort=created_at&direction=desc")
    assert len(header_cells(standard.text)) == 9
    assert 'aria-current="true" data-view="standard"' in standard.text


async def test_a_refused_view_comes_back_on_the_list_with_its_message(client, db, tenant_a, officer):
    slug = tenant_a.slug
    before = await count_views(db, tenant_a.tenant)
    refused = await client.post(
        f"/t/{slug}/customers/views",
        data={**csrf(client), "name": "   ", "cols": ["name", "tags"], "sort": "name", "direction": "asc"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert refused.status_code == 422
    assert 'id="name-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert '<details class="save-view" id="save-view" open>' in refused.text
    assert len(header_cells(refused.text)) == 2  # the list as it was: name and tags
    assert await count_views(db, tenant_a.tenant) == before


async def test_views_are_the_users_own(db, tenant_a):
    owner = await principal_of(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "loan_officer"))
    other = await principal_of(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "manager"))
    async with tenant_session(db, tenant_a.tenant) as session:
        mine = await SavedViewService(session, owner).create("customers", {**VIEW, "name": "我的视图"})
        theirs = SavedViewService(session, other)
        assert await theirs.views("customers") == []
        for attempt in (
            theirs.get("customers", mine.id),
            theirs.set_default("customers", mine.id, True),
            theirs.delete("customers", mine.id),
        ):
            with pytest.raises(SavedViewNotFound):
                await attempt
        # The same name is free for somebody else.
        await theirs.create("customers", {**VIEW, "name": "我的视图"})
    async with tenant_session(db, tenant_a.tenant) as session:
        assert (await SavedViewService(session, owner).get("customers", mine.id)).is_default is False


async def test_one_default_per_user_and_names_unique(db, tenant_a):
    user = await principal_of(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "loan_officer"))
    async with tenant_session(db, tenant_a.tenant) as session:
        service = SavedViewService(session, user)
        first = await service.create("customers", {**VIEW, "name": "一", "is_default": True})
        second = await service.create("customers", {**VIEW, "name": "二", "is_default": True})
        assert (await service.default_view("customers")).id == second.id
        await session.refresh(first)
        assert first.is_default is False
        await service.set_default("customers", first.id, True)
        assert (await service.default_view("customers")).id == first.id
        await service.set_default("customers", first.id, False)
        assert await service.default_view("customers") is None
        with pytest.raises(InvalidInput) as duplicate:
            await service.create("customers", {**VIEW, "name": " 一 "})
        assert duplicate.value.for_field("name").code == "duplicate"
        await service.delete("customers", second.id)
        assert [v.name for v in await service.views("customers")] == ["一"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 61}, "name"),
        ({"name": "ok", "columns": ["name", "national_id"]}, "columns"),
        ({"name": "ok", "columns": "name"}, "columns"),
        ({"name": "ok", "filters": {"search": "13812345678"}}, "filters"),
        ({"name": "ok", "filters": {"risk_level": "extreme"}}, "filters.risk_level"),
        ({"name": "ok", "sort": "phone"}, "sort"),
        ({"name": "ok", "direction": "sideways"}, "direction"),
    ],
)
async def test_refused_input_names_its_field_and_writes_nothing(db, tenant_a, data, field):
    user = await principal_of(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "loan_officer"))
    async with tenant_session(db, tenant_a.tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await SavedViewService(session, user).create("customers", {**VIEW, **data})
        assert refused.value.for_field(field) is not None
        assert await SavedViewService(session, user).views("customers") == []


async def test_a_user_has_at_most_so_many_views(db, tenant_a):
    user = await principal_of(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "viewer"))
    async with tenant_session(db, tenant_a.tenant) as session:
        service = SavedViewService(session, user)
        for number in range(MAX_VIEWS):
            await service.create("customers", {**VIEW, "name": f"v{number}"})
        with pytest.raises(InvalidInput) as refused:
            await service.create("customers", {**VIEW, "name": "one more"})
        assert refused.value.for_field("name").code == "too_many"


async def test_without_customers_read_there_are_no_views(db, lifecycle):
    fixture = await make_tenant(lifecycle, "noread")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    blind = dataclasses.replace(admin, permissions=frozenset())
    async with tenant_session(db, fixture.tenant) as session:
        with pytest.raises(PermissionDenied):
            await SavedViewService(session, blind).views("customers")


async def test_the_loan_list_sorts_by_amount_and_pages_in_that_order(client, db, lifecycle):
    fixture = await make_tenant(lifecycle, "loansort")
    officer = await add_user(db, fixture.tenant, "loan_officer")
    book = Book(db, fixture.tenant, officer)
    amounts = ["300000", "100000", "500000", "200000", "400000"]
    for amount in amounts:
        customer = await book.customer()
        await book.loan(customer, amount=amount, start_date=date.today().isoformat())
    async with tenant_session(db, fixture.tenant) as session:
        service = LoanService(session, await principal_of(db, fixture.tenant, officer))
        seen, after = [], None
        while True:
            page = await service.list_loans(first=2, after=after, sort="amount", descending=False)
            seen += [str(int(row.loan.amount)) for row in page.rows]
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert seen == sorted(amounts, key=int)
        newest = await service.list_loans(first=5)
        by_amount = await service.list_loans(first=5, sort="amount")
        assert [r.loan.created_at for r in newest.rows] == sorted(
            (r.loan.created_at for r in newest.rows), reverse=True
        )
        assert [int(r.loan.amount) for r in by_amount.rows] == sorted(map(int, amounts), reverse=True)

    assert (await web_sign_in(client, fixture.slug, officer)).status_code == 303
    page = await client.get(f"/t/{fixture.slug}/loans?sort=amount&direction=asc")
    assert page.status_code == 200
    assert 'aria-sort="ascending"' in page.text
    money_cells = re.findall(r'<td class="num">[^<\d]*([\d,]+\.\d\d)</td>', page.text)
    shown = money_cells[::3]  # amount, outstanding, overdue of each row
    assert shown == ["100,000.00", "200,000.00", "300,000.00", "400,000.00", "500,000.00"]
    # The header links flip the order and keep the filters.
    filtered = await client.get(f"/t/{fixture.slug}/loans?status=active&sort=amount&direction=asc")
    assert f'href="/t/{fixture.slug}/loans?status=active&amp;sort=amount&amp;direction=desc"' in filtered.text
