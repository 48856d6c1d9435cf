"""ContactService: interactions, follow-ups, "my day" and customers waiting for a contact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.contacts.models import Interaction
from tenantcrm.contacts.service import ContactService, FollowUpNotFound
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerNotFound, CustomerService
from tenantcrm.preferences.service import PreferencesService
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of


@pytest.fixture(scope="module")
async def office(lifecycle, db):
    fixture = await make_tenant(lifecycle, "contact")
    officer = await principal_of(db, fixture.tenant, await add_user(db, fixture.tenant, "loan_officer"))
    other = await principal_of(db, fixture.tenant, await add_user(db, fixture.tenant, "loan_officer"))
    viewer = await principal_of(db, fixture.tenant, await add_user(db, fixture.tenant, "viewer"))
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    return fixture.tenant, officer, other, viewer, admin


async def customer_of(db, tenant, principal, **extra):
    async with tenant_session(db, tenant) as session:
        return (await CustomerService(session, principal).create_customer({"name": "陈晨", **extra})).id


async def test_logging_a_contact_with_a_follow_up_puts_it_on_my_day(office, db):
    tenant, officer, *_ = office
    customer_id = await customer_of(db, tenant, officer)
    tomorrow = date.today() + timedelta(days=1)
    async with tenant_session(db, tenant) as session:
        contacts = ContactService(session, officer)
        await contacts.log_interaction(
            customer_id,
            {
                "channel": "phone",
                "summary": "Asked about early repayment",
                "next_step": "Send the payoff figure",
                "follow_up_on": date.today().isoformat(),
            },
        )
        await contacts.log_interaction(
            customer_id,
            {
                "channel": "wechat",
                "summary": "Visit agreed",
                "follow_up_on": tomorrow.isoformat(),
                "follow_up_channel": "visit",
            },
        )
        day = await contacts.my_day()
        customer = await session.get(Customer, customer_id)
    assert [r.follow_up.note for r in day.due_today] == ["Send the payoff figure"]
    assert [r.customer_name for r in day.visits] == ["陈晨"]
    assert customer.last_contact_at is not None
    async with tenant_session(db, tenant) as session:
        contacts = ContactService(session, officer)
        await contacts.complete_follow_up(day.due_today[0].follow_up.id)
        await contacts.complete_follow_up(day.due_today[0].follow_up.id)  # twice changes nothing
        assert (await contacts.my_day()).due_today == []
        overdue = await contacts.my_day(as_of=tomorrow + timedelta(days=3))
    assert [r.overdue_days for r in overdue.overdue] == [3]


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"channel": "fax", "summary": "x"}, ["channel"]),
        ({"channel": "phone", "summary": "  "}, ["summary"]),
        ({"channel": "phone", "summary": "x" * 2001}, ["summary"]),
        ({"channel": "phone", "summary": "x", "at": "2999-01-01T10:00:00+08:00"}, ["at"]),
        ({"channel": "phone", "summary": "x", "at": "2025-01-01T10:00:00"}, ["at"]),  # no time zone
        ({"channel": "phone", "summary": "x", "follow_up_on": "2020-01-01"}, ["follow_up_on"]),
        ({"channel": "phone", "summary": "x", "follow_up_on": "soon"}, ["follow_up_on"]),
    ],
)
async def test_bad_interactions_are_refused_writing_nothing(office, db, data, fields):
    tenant, officer, *_ = office
    customer_id = await customer_of(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await ContactService(session, officer).log_interaction(customer_id, data)
    assert [e.field for e in refused.value.errors] == fields
    async with tenant_session(db, tenant) as session:
        count = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.customer_id == customer_id)
        )
        customer = await session.get(Customer, customer_id)
    assert count == 0 and customer.last_contact_at is None


async def test_scope_and_permissions(office, db):
    tenant, officer, other, viewer, _ = office
    customer_id = await customer_of(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        follow_up = await ContactService(session, officer).plan_follow_up(
            customer_id, {"due_on": date.today().isoformat(), "note": "call"}
        )
    async with tenant_session(db, tenant) as session:
        with pytest.raises(CustomerNotFound):
            await ContactService(session, other).log_interaction(
                customer_id, {"channel": "phone", "summary": "x"}
            )
        with pytest.raises(FollowUpNotFound):
            await ContactService(session, other).complete_follow_up(follow_up.id)
        with pytest.raises(PermissionDenied):
            await ContactService(session, viewer).log_interaction(
                customer_id, {"channel": "phone", "summary": "x"}
            )
        with pytest.raises(PermissionDenied):
            await ContactService(session, viewer).complete_follow_up(follow_up.id)
        with pytest.raises(InvalidInput):
            await ContactService(session, officer).plan_follow_up(
                customer_id, {"due_on": date.today().isoformat(), "assignee_id": "not-a-user"}
            )


async def test_uncontacted_customers_follow_the_tenant_intervals(office, db):
    tenant, officer, _, _, admin = office
    regular = await customer_of(db, tenant, officer, status="active")
    key = await customer_of(db, tenant, officer, status="active", key_customer="on")
    closed = await customer_of(db, tenant, officer, status="closed")
    long_ago = datetime.now(UTC) - timedelta(days=20)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            update(Customer).where(Customer.id.in_([regular, key, closed])).values(created_at=long_ago)
        )
        await PreferencesService(session, admin).update(
            {"contact_interval_days": "30", "key_contact_interval_days": "14"}
        )
    async with tenant_session(db, tenant) as session:
        waiting = {row.customer.id: row for row in await ContactService(session, officer).uncontacted()}
    assert key in waiting and regular not in waiting and closed not in waiting
    assert (waiting[key].days_since_contact, waiting[key].interval_days) == (20, 14)
    async with tenant_session(db, tenant) as session:
        await PreferencesService(session, admin).update({"contact_interval_days": "10"})
        await ContactService(session, officer).log_interaction(
            key, {"channel": "visit", "summary": "Reviewed"}
        )
    async with tenant_session(db, tenant) as session:
        waiting = {row.customer.id for row in (await ContactService(session, officer).my_day()).uncontacted}
        with pytest.raises(InvalidInput):
            await PreferencesService(session, admin).update({"contact_interval_days": "0"})
        with pytest.raises(PermissionDenied):
            await PreferencesService(session, officer).update({"contact_interval_days": "5"})
    assert regular in waiting and key not in waiting
