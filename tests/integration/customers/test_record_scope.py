"""Record scope: own, team or all customers, applied to every read and write in the service."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update

from tenantcrm.auth.models import Team, User
from tenantcrm.customers.service import CustomerFilter, CustomerNotFound, CustomerService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of


@pytest.fixture(scope="module")
async def bank(lifecycle, db):
    """Two teams; an officer in each, a second officer in team east, a manager of east."""
    fixture = await make_tenant(lifecycle, "scope")
    people = {}
    async with tenant_session(db, fixture.tenant) as session:
        east, west = Team(id=uuid.uuid4(), name="east"), Team(id=uuid.uuid4(), name="west")
        session.add_all([east, west])
    for label, role, team in [
        ("east_officer", "loan_officer", east),
        ("east_officer_2", "loan_officer", east),
        ("west_officer", "loan_officer", west),
        ("east_manager", "manager", east),
        ("viewer", "viewer", None),
    ]:
        email = await add_user(db, fixture.tenant, role)
        if team is not None:
            async with tenant_session(db, fixture.tenant) as session:
                await session.execute(update(User).where(User.email == email).values(team_id=team.id))
        people[label] = await principal_of(db, fixture.tenant, email)
    created = {}
    for label in ("east_officer", "east_officer_2", "west_officer"):
        async with tenant_session(db, fixture.tenant) as session:
            customer = await CustomerService(session, people[label]).create_customer(
                {"name": f"{label} 的客户"}
            )
            created[label] = customer.id
    return fixture, people, created


async def visible(db, fixture, principal) -> set[uuid.UUID]:
    async with tenant_session(db, fixture.tenant) as session:
        page = await CustomerService(session, principal).list_customers(first=100)
        assert page.total_count == len(page.customers)
        return {c.id for c in page.customers}


async def test_an_officer_sees_only_own_customers(db, bank):
    fixture, people, created = bank
    assert await visible(db, fixture, people["east_officer"]) == {created["east_officer"]}


async def test_a_manager_sees_the_team(db, bank):
    fixture, people, created = bank
    assert await visible(db, fixture, people["east_manager"]) == {
        created["east_officer"],
        created["east_officer_2"],
    }


async def test_all_scope_sees_everyone(db, bank):
    fixture, people, created = bank
    assert set(created.values()) <= await visible(db, fixture, people["viewer"])


async def test_out_of_scope_customer_is_not_found_for_read_and_write(db, bank):
    fixture, people, created = bank
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, people["west_officer"])
        with pytest.raises(CustomerNotFound):
            await service.get_customer(created["east_officer"])
        with pytest.raises(CustomerNotFound):
            await service.update_customer(created["east_officer"], {"name": "taken over"})
        assert (await service.list_customers(filter=CustomerFilter(search="east"))).total_count == 0


async def test_new_customers_belong_to_the_creators_team(db, bank):
    fixture, people, _ = bank
    async with tenant_session(db, fixture.tenant) as session:
        customer = await CustomerService(session, people["west_officer"]).create_customer({"name": "新客户"})
        team = await session.scalar(select(Team.name).where(Team.id == customer.team_id))
    assert team == "west"
