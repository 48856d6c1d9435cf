"""Tenant administration: users, teams, the permission matrix and API tokens, checked in the service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tenantcrm.auth.admin_service import AccessAdminService, NotFound
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in

VIEWER = "{ viewer { email permissions } }"


@pytest.fixture
async def org(lifecycle, db):
    fixture = await make_tenant(lifecycle, "admin")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    return fixture, admin


async def as_admin(db, org, work):
    fixture, admin = org
    async with tenant_session(db, fixture.tenant) as session:
        return await work(AccessAdminService(session, admin))


async def test_an_invited_user_signs_in_with_the_generated_password(client, db, org):
    fixture, _ = org
    new = await as_admin(db, org, lambda s: s.invite_user(email="Li.Na@Bank.example", role="loan_officer"))
    assert new.email == "li.na@bank.example" and new.password and len(new.password) >= 16
    assert (await web_sign_in(client, fixture.slug, new.email, new.password)).status_code == 303
    with pytest.raises(InvalidInput) as duplicate:
        await as_admin(db, org, lambda s: s.invite_user(email="li.na@bank.example", role="viewer"))
    assert duplicate.value.for_field("email").code == "duplicate"


async def test_disabling_a_user_ends_its_live_session_and_token_at_once(client, db, org):
    fixture, _ = org
    email = await add_user(db, fixture.tenant, "manager")
    await web_sign_in(client, fixture.slug, email)
    assert (await client.get(f"/t/{fixture.slug}/customers")).status_code == 200
    manager = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        token = await AccessAdminService(session, manager).create_token(
            name="ci", permissions=None, expires_at=None
        )
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/graphql", json={"query": VIEWER}, headers=headers)).status_code == 200

    await as_admin(db, org, lambda s: s.set_status(manager.user_id, "disabled"))
    page = await client.get(f"/t/{fixture.slug}/customers", follow_redirects=False)
    assert page.status_code == 303 and "/login" in page.headers["location"]
    assert (await client.post("/graphql", json={"query": VIEWER}, headers=headers)).status_code == 401

    await as_admin(db, org, lambda s: s.set_status(manager.user_id, "active"))
    # Enabling again does not bring back what was ended: the token stays revoked.
    assert (await client.post("/graphql", json={"query": VIEWER}, headers=headers)).status_code == 401


async def test_the_matrix_decides_what_a_custom_role_may_do(db, org):
    fixture, _ = org
    role = await as_admin(
        db, org, lambda s: s.create_role("collector", record_scope="team", permissions={"customers.read"})
    )
    email = await add_user(db, fixture.tenant, "collector")
    collector = await principal_of(db, fixture.tenant, email)
    assert collector.permissions == {"customers.read"} and collector.record_scope == "team"

    await as_admin(
        db,
        org,
        lambda s: s.update_role(role.id, record_scope="all", permissions={"customers.read", "export"}),
    )
    collector = await principal_of(db, fixture.tenant, email)
    assert collector.permissions == {"customers.read", "export"} and collector.record_scope == "all"

    roles = {r.name: r for r in await as_admin(db, org, lambda s: s.list_roles())}
    assert roles["collector"].users == 1 and not roles["collector"].built_in
    with pytest.raises(InvalidInput):
        await as_admin(db, org, lambda s: s.delete_role(role.id))  # still held by a user


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (
            lambda s, roles: s.update_role(roles["admin"].id, record_scope="own", permissions=set()),
            "admin_fixed",
        ),
        (lambda s, roles: s.delete_role(roles["viewer"].id), "built_in"),
        (lambda s, roles: s.create_role("Bad Name", record_scope="own", permissions=set()), "invalid_name"),
        (
            lambda s, roles: s.create_role("ok_name", record_scope="galaxy", permissions=set()),
            "invalid_choice",
        ),
        (
            lambda s, roles: s.create_role("ok_name", record_scope="own", permissions={"root"}),
            "unknown_permission",
        ),
    ],
)
async def test_matrix_changes_that_are_refused(db, org, change, code):
    roles = {r.name: r for r in await as_admin(db, org, lambda s: s.list_roles())}
    with pytest.raises(InvalidInput) as refused:
        await as_admin(db, org, lambda s: change(s, roles))
    assert refused.value.errors[0].code == code


async def test_a_token_holds_at_most_its_users_rights(client, db, org):
    fixture, _ = org
    email = await add_user(db, fixture.tenant, "loan_officer")
    officer = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        service = AccessAdminService(session, officer)
        with pytest.raises(PermissionDenied):
            await service.create_token(name="x", permissions=None, expires_at=None)  # officers lack the right
    email = await add_user(db, fixture.tenant, "manager")
    manager = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        service = AccessAdminService(session, manager)
        with pytest.raises(InvalidInput):
            await service.create_token(name="wide", permissions={"admin.roles"}, expires_at=None)
        with pytest.raises(InvalidInput):
            await service.create_token(
                name="old", permissions=None, expires_at=datetime.now(UTC) - timedelta(days=1)
            )
        narrow = await service.create_token(name="read only", permissions={"customers.read"}, expires_at=None)
    body = (
        await client.post("/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {narrow}"})
    ).json()
    assert body["data"]["viewer"]["permissions"] == ["customers.read"]
    tokens = await as_admin(db, org, lambda s: s.list_tokens())
    assert {"read only"} <= {t.name for t in tokens}
    token_id = next(t.id for t in tokens if t.name == "read only")
    async with tenant_session(db, fixture.tenant) as session:
        await AccessAdminService(session, manager).revoke_token(token_id)
    refused = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {narrow}"}
    )
    assert refused.status_code == 401


async def test_users_without_admin_rights_are_refused(db, org):
    fixture, _ = org
    email = await add_user(db, fixture.tenant, "loan_officer")
    officer = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        service = AccessAdminService(session, officer)
        for attempt in (service.list_users, service.list_roles, service.list_teams):
            with pytest.raises(PermissionDenied):
                await attempt()


async def test_teams_and_assignment(db, org):
    fixture, admin = org
    team = await as_admin(db, org, lambda s: s.create_team("  华东 分行 "))
    assert team.name == "华东 分行"
    email = await add_user(db, fixture.tenant, "loan_officer")
    user = await principal_of(db, fixture.tenant, email)
    await as_admin(db, org, lambda s: s.assign(user.user_id, role="manager", team_id=team.id))
    moved = await principal_of(db, fixture.tenant, email)
    assert moved.role == "manager" and moved.team_id == team.id
    with pytest.raises(InvalidInput):
        await as_admin(db, org, lambda s: s.assign(admin.user_id, role="viewer", team_id=None))
    with pytest.raises(NotFound):
        await as_admin(db, org, lambda s: s.assign(uuid.uuid4(), role="viewer", team_id=None))


async def test_a_user_admin_cannot_hand_out_rights_it_does_not_have(db, org):
    fixture, _ = org
    await as_admin(
        db,
        org,
        lambda s: s.create_role(
            "user_admin", record_scope="all", permissions={"admin.users", "customers.read"}
        ),
    )
    email = await add_user(db, fixture.tenant, "user_admin")
    user_admin = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        service = AccessAdminService(session, user_admin)
        with pytest.raises(InvalidInput) as refused:
            await service.invite_user(email="boss@example.com", role="admin")
        assert refused.value.for_field("role").code == "beyond_own_rights"
        with pytest.raises(InvalidInput):
            await service.assign(user_admin.user_id, role="admin", team_id=None)
        assert (await service.invite_user(email="reader@example.com", role="viewer")).role == "viewer"


async def test_nobody_acts_beyond_their_own_rights(db, org):
    fixture, admin = org
    await as_admin(
        db,
        org,
        lambda s: s.create_role("role_admin", record_scope="all", permissions={"admin.roles", "admin.users"}),
    )
    email = await add_user(db, fixture.tenant, "role_admin")
    role_admin = await principal_of(db, fixture.tenant, email)
    async with tenant_session(db, fixture.tenant) as session:
        service = AccessAdminService(session, role_admin)
        roles = {r.name: r for r in await service.list_roles()}
        with pytest.raises(InvalidInput):  # may not give its own role pii.reveal
            await service.update_role(
                roles["role_admin"].id,
                record_scope="all",
                permissions={"admin.roles", "admin.users", "pii.reveal"},
            )
        with pytest.raises(InvalidInput):
            await service.create_role("snoop", record_scope="all", permissions={"audit.read"})
        with pytest.raises(InvalidInput):  # may not demote or disable a full admin
            await service.assign(admin.user_id, role="viewer", team_id=None)
        with pytest.raises(InvalidInput):
            await service.set_status(admin.user_id, "disabled")
