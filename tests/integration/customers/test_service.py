"""CustomerService: validation, keyset pages in every order, search, filters, permissions."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import (
    CustomerFilter,
    CustomerNotFound,
    CustomerOrder,
    CustomerService,
    InvalidCursor,
)
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of


@pytest.fixture(scope="module")
async def book(lifecycle, db):
    """A tenant of this module with 23 customers: tied names and incomes, some NULL incomes."""
    fixture = await make_tenant(lifecycle, "book")
    principal = await principal_of(db, fixture.tenant, fixture.admin_email)
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, principal)
        for i in range(23):
            await service.create_customer(
                {
                    "kind": "enterprise" if i % 5 == 0 else "individual",
                    "name": ["王伟", "李娜", "张敏"][i % 3],
                    "monthly_income": None if i % 4 == 0 else str(Decimal(1000 * (i % 6))),
                    "risk_level": ["low", "medium", "high"][i % 3],
                    "status": "active" if i % 2 else "prospect",
                    "region_code": "310000",
                }
            )
    return fixture, principal


async def walk(db, tenant, principal, order, size, backwards=False):
    """Every customer id, page by page, in the order the pages give them."""
    seen, cursor = [], None
    async with tenant_session(db, tenant) as session:
        service = CustomerService(session, principal)
        while True:
            if backwards:
                page = await service.list_customers(order=order, last=size, before=cursor)
                seen = [c.id for c in page.customers] + seen
                if not page.has_previous_page:
                    return seen
                cursor = page.start_cursor
            else:
                page = await service.list_customers(order=order, first=size, after=cursor)
                seen += [c.id for c in page.customers]
                if not page.has_next_page:
                    return seen
                cursor = page.end_cursor


@pytest.mark.parametrize("field", ["created_at", "name", "monthly_income"])
@pytest.mark.parametrize("descending", [True, False])
async def test_pages_visit_every_customer_once_in_order_both_ways(db, book, field, descending):
    fixture, principal = book
    order = CustomerOrder(field, descending)
    forward = await walk(db, fixture.tenant, principal, order, size=4)
    backward = await walk(db, fixture.tenant, principal, order, size=5, backwards=True)
    async with tenant_session(db, fixture.tenant) as session:
        rows = (await session.scalars(select(Customer))).all()

    def key(c):
        value = getattr(c, field)
        return (value if value is not None else Decimal(-1), c.id)

    expected = [c.id for c in sorted(rows, key=key, reverse=descending)]
    assert len(forward) == 23
    assert forward == expected
    assert backward == expected


async def test_total_count_follows_filters(db, book):
    fixture, principal = book
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, principal)
        everyone = await service.list_customers()
        high = await service.list_customers(filter=CustomerFilter(risk_level="high"))
        active_high = await service.list_customers(filter=CustomerFilter(risk_level="high", status="active"))
        named = await service.list_customers(filter=CustomerFilter(search=" 李 "))
    assert everyone.total_count == 23
    assert high.total_count == 7 and {c.risk_level for c in high.customers} == {"high"}
    assert active_high.total_count == sum(1 for i in range(23) if i % 3 == 2 and i % 2)
    assert named.total_count == 8 and all("李" in c.name for c in named.customers)


async def test_search_treats_like_wildcards_literally(db, tenant_a):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    marker = uuid.uuid4().hex[:6]
    async with tenant_session(db, tenant_a.tenant) as session:
        service = CustomerService(session, principal)
        await service.create_customer({"name": f"100% 公司 {marker}"})
        await service.create_customer({"name": f"100X 公司 {marker}"})
        await service.create_customer({"name": f"a_b {marker}"})
        await service.create_customer({"name": f"axb {marker}"})
        percent = await service.list_customers(filter=CustomerFilter(search=f"100% 公司 {marker}"))
        underscore = await service.list_customers(filter=CustomerFilter(search=f"a_b {marker}"))
    assert [c.name for c in percent.customers] == [f"100% 公司 {marker}"]
    assert [c.name for c in underscore.customers] == [f"a_b {marker}"]


async def test_a_cursor_of_another_ordering_or_garbage_is_refused(db, book):
    fixture, principal = book
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, principal)
        page = await service.list_customers(order=CustomerOrder("name", False), first=2)
        for bad in (page.end_cursor, "not-a-cursor", "WyJ4Il0"):
            with pytest.raises(InvalidCursor):
                await service.list_customers(order=CustomerOrder("created_at"), after=bad)


async def test_cursors_carry_no_customer_data(db, book):
    import base64

    fixture, principal = book
    async with tenant_session(db, fixture.tenant) as session:
        page = await CustomerService(session, principal).list_customers(order=CustomerOrder("name", False))
    for cursor, customer in zip(page.cursors, page.customers, strict=True):
        decoded = base64.urlsafe_b64decode(cursor + "==").decode()
        assert customer.name not in decoded and str(customer.monthly_income) not in decoded


@pytest.mark.parametrize(
    ("values", "field", "code"),
    [
        ({"name": "   "}, "name", "required"),
        ({"name": "x" * 201}, "name", "too_long"),
        ({"name": "ok", "kind": "alien"}, "kind", "invalid_choice"),
        ({"name": "ok", "risk_level": "extreme"}, "risk_level", "invalid_choice"),
        ({"name": "ok", "status": "gone"}, "status", "invalid_choice"),
        ({"name": "ok", "region_code": "999999"}, "region_code", "unknown_region"),
        ({"name": "ok", "monthly_income": "-1"}, "monthly_income", "invalid_amount"),
        ({"name": "ok", "monthly_income": "1.005"}, "monthly_income", "invalid_amount"),
        ({"name": "ok", "monthly_income": "abc"}, "monthly_income", "invalid_amount"),
        ({"name": "ok", "monthly_income": "NaN"}, "monthly_income", "invalid_amount"),
        ({"name": "ok", "monthly_income": 12.5}, "monthly_income", "invalid_amount"),
    ],
)
async def test_invalid_input_is_refused_and_nothing_is_written(db, tenant_a, values, field, code):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        before = await session.scalar(select(func.count()).select_from(Customer))
        with pytest.raises(InvalidInput) as refused:
            await CustomerService(session, principal).create_customer(values)
        after = await session.scalar(select(func.count()).select_from(Customer))
    assert refused.value.for_field(field).code == code
    assert before == after


async def test_input_is_normalised(db, tenant_a):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        customer = await CustomerService(session, principal).create_customer(
            {"name": "  张  三 ", "monthly_income": "１２,３４５.６", "risk_level": " HIGH ", "kind": None}
        )
    assert customer.name == "张 三"
    assert customer.monthly_income == Decimal("12345.60")
    assert customer.risk_level == "high" and customer.kind == "individual" and customer.status == "prospect"


async def test_update_changes_only_given_fields(db, tenant_a):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        service = CustomerService(session, principal)
        created = await service.create_customer(
            {"name": "李四", "monthly_income": "8000", "region_code": "440300"}
        )
        updated = await service.update_customer(created.id, {"monthly_income": None, "risk_level": "medium"})
        assert updated.monthly_income is None and updated.risk_level == "medium"
        assert updated.region_code == "440300" and updated.name == "李四"
        with pytest.raises(InvalidInput):
            await service.update_customer(created.id, {"name": None})
        with pytest.raises(InvalidInput):
            await service.update_customer(created.id, {"status": None})


async def test_unknown_or_malformed_ids_are_not_found(db, tenant_a):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        service = CustomerService(session, principal)
        for bad in (uuid.uuid4(), "not-a-uuid", "", "'; DROP TABLE customers; --"):
            with pytest.raises(CustomerNotFound):
                await service.get_customer(bad)
        with pytest.raises(CustomerNotFound):
            await service.update_customer(uuid.uuid4(), {"name": "x"})


async def test_viewer_reads_but_cannot_write(db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    viewer = await principal_of(db, tenant_a.tenant, email)
    async with tenant_session(db, tenant_a.tenant) as session:
        service = CustomerService(session, viewer)
        page = await service.list_customers()
        assert page.total_count is not None
        with pytest.raises(PermissionDenied):
            await service.create_customer({"name": "x"})
        if page.customers:
            with pytest.raises(PermissionDenied):
                await service.update_customer(page.customers[0].id, {"name": "x"})


async def test_page_size_is_capped(db, book):
    fixture, principal = book
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, principal)
        assert len((await service.list_customers(first=0)).customers) == 1
        assert len((await service.list_customers(first=10_000)).customers) == 23
