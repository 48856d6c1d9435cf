"""The database, not the application code, refuses work that is not scoped to a tenant."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from tenantcrm.tenancy.session import tenant_session, unscoped_platform_session
from tests.isolation.helpers import create_customer, unique

TENANT_TABLES = ["customers", "users", "web_sessions", "api_tokens"]


async def _unscoped(db, sql: str, params: dict | None = None):
    async with unscoped_platform_session(db) as session:
        return (await session.execute(text(sql), params or {})).all()


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_job_without_tenant_cannot_resolve_an_unqualified_tenant_table(db, tenant_a, table):
    with pytest.raises(ProgrammingError, match=f'relation "{table}" does not exist'):
        await _unscoped(db, f"SELECT count(*) FROM {table}")


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_job_without_tenant_gets_permission_denied_on_a_qualified_tenant_table(db, tenant_a, table):
    with pytest.raises(ProgrammingError, match="permission denied for schema"):
        await _unscoped(db, f'SELECT count(*) FROM "{tenant_a.tenant.schema}".{table}')


async def test_job_without_tenant_still_reads_the_platform_registry(db, tenant_a):
    # The fail-closed refusals above are not just a broken connection.
    rows = await _unscoped(
        db, "SELECT schema_name FROM platform.tenants WHERE slug = :slug", {"slug": tenant_a.slug}
    )
    assert rows == [(tenant_a.tenant.schema,)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT set_config('role', :role, true)",
        "SELECT set_config('role', :role, false)",
    ],
    ids=["set_config-local", "set_config-session"],
)
@pytest.mark.parametrize("role", ["postgres", "pg_read_all_data", "pg_write_server_files"])
async def test_app_role_cannot_take_a_role_it_was_not_granted(db, statement, role):
    with pytest.raises(DBAPIError, match=f'permission denied to set role "{role}"'):
        await _unscoped(db, statement, {"role": role})


@pytest.mark.parametrize("role", ["postgres", "pg_read_all_data"])
async def test_app_role_cannot_set_role_or_session_authorization_to_an_ungranted_role(db, role):
    with pytest.raises(DBAPIError, match=f'permission denied to set role "{role}"'):
        await _unscoped(db, f'SET ROLE "{role}"')
    with pytest.raises(DBAPIError, match="permission denied to set session authorization"):
        await _unscoped(db, f'SET SESSION AUTHORIZATION "{role}"')


async def test_app_role_cannot_take_a_tenant_shaped_role_it_was_not_granted(db):
    """Only the tenant roles provisioning granted: not any role that merely looks like one."""
    stranger = f"t_{secrets.token_hex(8)}"
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{stranger}" NOLOGIN'))
    try:
        with pytest.raises(DBAPIError, match=f'permission denied to set role "{stranger}"'):
            await _unscoped(db, "SELECT set_config('role', :role, true)", {"role": stranger})
    finally:
        async with db.admin_engine.begin() as conn:
            await conn.execute(text(f'DROP ROLE "{stranger}"'))


async def test_app_role_can_take_a_granted_tenant_role(db, tenant_a):
    # The positive control of the refusals above: the same statement works for a granted role.
    rows = await _unscoped(
        db,
        "SELECT set_config('role', :role, true), current_user",
        {"role": tenant_a.tenant.schema},
    )
    assert rows == [(tenant_a.tenant.schema, tenant_a.tenant.schema)]


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_session_cannot_read_another_tenants_schema_qualified(db, tenant_a, tenant_b, table):
    await create_customer(db, tenant_b, unique("b-only"))
    with pytest.raises(ProgrammingError, match="permission denied for schema"):
        async with tenant_session(db, tenant_a.tenant) as session:
            await session.execute(text(f'SELECT count(*) FROM "{tenant_b.tenant.schema}".{table}'))


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_tenant_session_can_read_its_own_schema_qualified(db, tenant_a, table):
    # Positive control: the qualified name itself is right, only the other tenant is refused.
    async with tenant_session(db, tenant_a.tenant) as session:
        count = await session.scalar(text(f'SELECT count(*) FROM "{tenant_a.tenant.schema}".{table}'))
    assert count is not None and count >= 0


async def test_tenant_session_cannot_write_into_another_tenants_schema(db, tenant_a, tenant_b):
    name = unique("smuggled")
    with pytest.raises(ProgrammingError, match="permission denied for schema"):
        async with tenant_session(db, tenant_a.tenant) as session:
            await session.execute(
                text(
                    f'INSERT INTO "{tenant_b.tenant.schema}".customers (id, kind, name)'
                    " VALUES (gen_random_uuid(), 'individual', :name)"
                ),
                {"name": name},
            )
    async with db.admin_engine.connect() as conn:
        found = await conn.scalar(
            text(f'SELECT count(*) FROM "{tenant_b.tenant.schema}".customers WHERE name = :name'),
            {"name": name},
        )
    assert found == 0


async def test_tenant_session_cannot_read_the_platform_registry(db, tenant_a):
    """A tenant's role sees its schema alone: not the registry of all tenants."""
    with pytest.raises(ProgrammingError, match="permission denied for schema platform"):
        async with tenant_session(db, tenant_a.tenant) as session:
            await session.execute(text("SELECT count(*) FROM platform.tenants"))
