"""The one place that scopes database work to a tenant (role and search_path): tenant_session, and
tenant_session_by_id for a request that knows its tenant only by the id its API token carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Text, any_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.database import Database
from tenantcrm.tenancy.models import TenantRow, to_tenant
from tenantcrm.tenancy.tenant import TENANT_ID_PATTERN, Tenant


def _scope_to(schema: Any) -> tuple[ColumnElement[str], ColumnElement[str]]:
    """The columns that scope the transaction to `schema` (a tenant's schema and role name).

    set_config(..., true) is SET LOCAL: it ends with the transaction, so nothing survives on a
    pooled connection. Setting `role` checks membership like SET ROLE.
    """
    return func.set_config("role", schema, True), func.set_config("search_path", schema, True)


# One statement, one round trip, the same prepared statement for every tenant.
_SCOPE = select(*_scope_to(bindparam("schema", type_=Text)))


@asynccontextmanager
async def tenant_session(db: Database, tenant: Tenant) -> AsyncIterator[AsyncSession]:
    """A transaction acting as the tenant's role inside the tenant's schema.

    Commits when the block ends normally, rolls back on any exception.
    """
    async with db.app_sessions() as session, session.begin():
        await session.execute(_SCOPE, {"schema": tenant.schema})
        yield session


class TenantNotFound(Exception):
    """No tenant with that id and one of the asked statuses."""


# The registry row, read by the statement that scopes the transaction: set_config runs only for
# the row found, as the application role, before any tenant table can be named.
_REGISTRY_ROW = (
    TenantRow.id,
    TenantRow.slug,
    TenantRow.name,
    TenantRow.status,
    TenantRow.schema_name,
    TenantRow.schema_version,
    TenantRow.max_users,
    TenantRow.max_customers,
    TenantRow.max_storage_mb,
    *_scope_to(TenantRow.schema_name),
)
# Built once: this runs before every API request (issue 8's profile).
_FIND_AND_SCOPE = select(*_REGISTRY_ROW).where(
    TenantRow.id == bindparam("tenant_id"), TenantRow.status == any_(bindparam("statuses", type_=ARRAY(Text)))
)


@asynccontextmanager
async def tenant_session_by_id(
    db: Database, tenant_id: str, statuses: tuple[str, ...]
) -> AsyncIterator[tuple[Tenant, AsyncSession]]:
    """tenant_session for a tenant known by the id an API token carries, with its registry row.

    One round trip finds the tenant and scopes the transaction to it (a lookup of its own was a
    transaction more on every API request, issue 8). TenantNotFound, raised before the block
    runs, leaves the transaction unscoped and rolled back, having read no tenant's data.
    """
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise TenantNotFound
    async with db.app_sessions() as session, session.begin():
        connection = await session.connection()
        found = await connection.execute(
            _FIND_AND_SCOPE, {"tenant_id": tenant_id, "statuses": list(statuses)}
        )
        row = found.first()
        if row is None:
            raise TenantNotFound
        yield to_tenant(row), session


@asynccontextmanager
async def unscoped_platform_session(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction as the bare application role: platform tables only, no tenant data."""
    async with db.app_sessions() as session, session.begin():
        yield session
