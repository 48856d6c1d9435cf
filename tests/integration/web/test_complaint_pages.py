"""The complaints list in keyset pages, both ways and in both orders its headers offer, a customer's
complaints tab with "show more", and the plans of those pages: an index range read (t0012), no sort
of every complaint."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text

from tenantcrm.complaints.models import Complaint
from tenantcrm.complaints.service import ComplaintOrder, ComplaintService, complaint_cursor
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.plans import captured, scans
from tests.integration.web.test_lending_pages import HTMX, rows_of

CUSTOMERS = 40
COMPLAINTS = 3000  # enough for the planner to prefer the order's index to sorting them all
ORDERS = [
    pytest.param(ComplaintOrder("respond_by"), id="most-urgent-first"),
    pytest.param(ComplaintOrder("respond_by", descending=True), id="least-urgent-first"),
    pytest.param(ComplaintOrder("received_at", descending=True), id="newest-first"),
    pytest.param(ComplaintOrder("received_at"), id="oldest-first"),
]


@dataclass(frozen=True)
class Desk:
    tenant: Any
    admin_email: str
    officer_email: str  # owns every fourth customer; record scope own
    busy_customer: uuid.UUID  # one of the officer's, with 75 complaints


@pytest.fixture(scope="module")
async def desk(lifecycle, db) -> Desk:
    fixture = await make_tenant(lifecycle, "complaints")
    tenant = fixture.tenant
    officer_email = await add_user(db, tenant, "loan_officer")
    officer = await principal_of(db, tenant, officer_email)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text(
                """
                INSERT INTO customers (kind, name, risk_level, status, owner_id)
                SELECT 'individual', '投诉客户' || g, 'low', 'active',
                       CASE WHEN g % 4 = 0 THEN CAST(:officer AS uuid) END
                FROM generate_series(1, :n) g
                """
            ),
            {"n": CUSTOMERS, "officer": str(officer.user_id)},
        )
        # Received over a year; every third resolved; respond_by ties on purpose (the id decides).
        await session.execute(
            text(
                """
                INSERT INTO complaints (id, customer_id, kind, category, content, status, resolution,
                                        received_at, respond_by, resolved_at)
                SELECT gen_random_uuid(), c.id, 'complaint', 'service', '等候时间过长',
                       CASE WHEN g % 3 = 0 THEN 'resolved' ELSE 'open' END,
                       CASE WHEN g % 3 = 0 THEN '已处理' ELSE '' END,
                       timestamptz '2026-01-01' + g * interval '3 hours',
                       timestamptz '2026-01-01' + (g % 500) * interval '1 day',
                       CASE WHEN g % 3 = 0 THEN timestamptz '2026-06-01' END
                FROM generate_series(1, :n) g
                JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS i FROM customers) c
                  ON c.i = g % :customers
                """
            ),
            {"n": COMPLAINTS, "customers": CUSTOMERS},
        )
        busy = await session.scalar(
            text(
                "SELECT customer_id FROM complaints JOIN customers c ON c.id = customer_id"
                " WHERE c.owner_id = :officer GROUP BY customer_id ORDER BY customer_id LIMIT 1"
            ),
            {"officer": str(officer.user_id)},
        )
    async with db.admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("customers", "complaints"):
            await conn.execute(text(f'VACUUM ANALYZE "{tenant.schema}".{table}'))
    return Desk(tenant, fixture.admin_email, officer_email, busy)


async def everything(db, desk: Desk, order: ComplaintOrder, status: str | None = None) -> list[uuid.UUID]:
    """Every complaint's id (of a status) in `order`, sorted here from the rows themselves."""
    async with tenant_session(db, desk.tenant) as session:
        rows = [c for c in await session.scalars(select(Complaint)) if status in (None, c.status)]

    def key(c: Complaint) -> tuple:
        return (
            (c.status == "resolved", c.respond_by, c.id)
            if order.field == "respond_by"
            else (c.received_at, c.id)
        )

    return [c.id for c in sorted(rows, key=key, reverse=order.descending)]


@pytest.mark.parametrize("order", ORDERS)
async def test_pages_forward_and_back_cover_every_complaint_once_in_order(db, desk, order):
    expected = await everything(db, desk, order)
    admin = await principal_of(db, desk.tenant, desk.admin_email)
    forward: list[list[uuid.UUID]] = []
    async with tenant_session(db, desk.tenant) as session:
        service = ComplaintService(session, admin)
        page = await service.page_complaints(order=order, first=200)
        assert not page.has_previous_page
        while True:
            forward.append([row.complaint.id for row in page.rows])
            if not page.has_next_page:
                break
            page = await service.page_complaints(order=order, first=200, after=page.end_cursor)
        assert page.has_previous_page
        backward = []
        while True:
            backward.insert(0, [row.complaint.id for row in page.rows])
            if not page.has_previous_page:
                break
            page = await service.page_complaints(order=order, last=200, before=page.start_cursor)
    assert [i for ids in forward for i in ids] == expected
    assert backward == forward


async def test_a_cursor_of_another_order_or_made_up_is_refused(db, desk):
    admin = await principal_of(db, desk.tenant, desk.admin_email)
    async with tenant_session(db, desk.tenant) as session:
        service = ComplaintService(session, admin)
        first = (await service.page_complaints(first=5)).rows[-1].complaint
        for order, cursor in (
            (ComplaintOrder("received_at"), complaint_cursor(first)),  # issued for respond_by
            (ComplaintOrder(), "bm90IGEgY3Vyc29y"),
            (ComplaintOrder(), "x" * 300),
        ):
            with pytest.raises(InvalidInput):
                await service.page_complaints(order=order, after=cursor)
        # The cursor names the order and the complaint, nothing the customer said or when.
        assert complaint_cursor(first) == complaint_cursor(first, ComplaintOrder(descending=True))
        assert "等候" not in complaint_cursor(first)


@pytest.mark.parametrize("order", ORDERS)
async def test_a_page_reads_its_order_index_and_sorts_nothing(db, desk, order):
    admin = await principal_of(db, desk.tenant, desk.admin_email)
    with captured(db) as statements:  # those that read customers: the complaint pages join them
        async with tenant_session(db, desk.tenant) as session:
            service = ComplaintService(session, admin)
            first = await service.page_complaints(order=order, first=50)
            await service.page_complaints(order=order, first=50, after=first.end_cursor)
            await service.page_complaints(order=order, last=50, before=first.end_cursor)
    assert len(statements) == 3 and all("FROM complaints" in statement for statement, _ in statements)
    index = "complaints_urgency_id" if order.field == "respond_by" else "complaints_received_at_id"
    async with tenant_session(db, desk.tenant) as session:
        conn = await session.connection()
        for statement, parameters in statements:
            document = (
                await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            ).scalar_one()
            plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
            found = [(node, index_name) for node, _relation, index_name in scans(plan)]
            assert ("Index Scan", index) in found or ("Index Scan Backward", index) in found, found
            assert not any(node in ("Sort", "Incremental Sort") for node, _ in found), found


def ids_in(html: str, table: str) -> list[str]:
    return [
        found.group(1)
        for row in rows_of(html, table)
        if (found := re.search(r'id="complaint-([\w-]+)"', row))
    ]


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}"', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def test_the_list_pages_both_ways_and_sorts_by_its_headers(client, db, desk):
    await web_sign_in(client, desk.tenant.slug, desk.admin_email)
    base = f"/t/{desk.tenant.slug}/complaints"
    urgent = await everything(db, desk, ComplaintOrder())
    first = await client.get(base)
    assert first.status_code == 200 and link(first.text, "prev") is None
    assert ids_in(first.text, "complaints") == [str(i) for i in urgent[:50]]
    second = await client.get(link(first.text, "next"))
    assert ids_in(second.text, "complaints") == [str(i) for i in urgent[50:100]]
    back = await client.get(link(second.text, "prev"))
    assert ids_in(back.text, "complaints") == ids_in(first.text, "complaints")

    # "Received": newest first, then oldest first; the order and the filter travel together.
    assert 'aria-sort="ascending"' in first.text  # respond by, the most urgent first
    newest = await client.get(f"{base}?sort=received_at&direction=desc&status=open")
    assert (
        f'href="/t/{desk.tenant.slug}/complaints?status=open&amp;sort=received_at&amp;direction=asc"'
        in newest.text
    )
    expected = await everything(db, desk, ComplaintOrder("received_at", descending=True), "open")
    assert ids_in(newest.text, "complaints") == [str(i) for i in expected[:50]]
    after = link(newest.text, "next")
    assert after is not None and "status=open" in after and "sort=received_at" in after

    stale = await client.get(f"{base}?after=not-a-cursor")  # an edited link: the first page
    assert stale.status_code == 200 and ids_in(stale.text, "complaints") == ids_in(first.text, "complaints")


async def test_the_customer_tab_shows_more_until_every_complaint_is_there(client, db, desk):
    await web_sign_in(client, desk.tenant.slug, desk.officer_email)
    url = f"/t/{desk.tenant.slug}/customers/{desk.busy_customer}?tab=complaints"
    async with tenant_session(db, desk.tenant) as session:
        theirs = {
            str(i)
            for i in await session.scalars(
                select(Complaint.id).where(Complaint.customer_id == desk.busy_customer)
            )
        }
    tab = await client.get(url)
    seen = ids_in(tab.text, "customer-complaints")
    assert len(seen) == 20 and 'id="complaints-more"' in tab.text
    more = re.search(r'id="complaints-more".*?href="([^"]+)"', tab.text, re.S).group(1).replace("&amp;", "&")
    while more:
        part = await client.get(more, headers={**HTMX, "HX-Target": "complaints-more"})
        assert part.status_code == 200 and "<html" not in part.text
        seen += re.findall(r'<tr id="complaint-([\w-]+)"', part.text)
        found = re.search(r'id="complaints-more".*?href="([^"]+)"', part.text, re.S)
        more = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == len(theirs) and set(seen) == theirs
    # Without JavaScript the same link opens the tab at the next complaints.
    plain = await client.get(f"{url}&after=not-a-cursor")
    assert plain.status_code == 200 and ids_in(plain.text, "customer-complaints") == seen[:20]
