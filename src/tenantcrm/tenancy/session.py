"""The one place that scopes database work to a tenant (role and search_path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.database import Database
from tenantcrm.tenancy.tenant import Tenant

# One statement, one round trip, the same prepared statement for every tenant.
# set_config(..., true) is SET LOCAL: it ends with the transaction, so nothing
# survives on a pooled connection. Setting `role` checks membership like SET ROLE.
_SCOPE = text("SELECT set_config('role', :schema, true), set_config('search_path', :schema, true)")


@asynccontextmanager
async def tenant_session(db: Database, tenant: Tenant) -> AsyncIterator[AsyncSession]:
    """A transaction acting as the tenant's role inside the tenant's schema.

    Commits when the block ends normally, rolls back on any exception.
    """
    async with db.app_sessions() as session, session.begin():
        await session.execute(_SCOPE, {"schema": tenant.schema})
        yield session


@asynccontextmanager
async def unscoped_platform_session(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction as the bare application role: platform tables only, no tenant data."""
    async with db.app_sessions() as session, session.begin():
        yield session
