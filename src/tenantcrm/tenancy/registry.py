"""Read the tenant registry as the application role."""

from __future__ import annotations

from sqlalchemy import select

from tenantcrm.database import Database
from tenantcrm.tenancy.models import TenantRow, to_tenant
from tenantcrm.tenancy.session import unscoped_platform_session
from tenantcrm.tenancy.tenant import SLUG_PATTERN, TENANT_ID_PATTERN, Tenant


async def find_tenant_by_slug(db: Database, slug: str) -> Tenant | None:
    if not SLUG_PATTERN.fullmatch(slug):
        return None
    async with unscoped_platform_session(db) as session:
        row = await session.scalar(select(TenantRow).where(TenantRow.slug == slug))
    return to_tenant(row) if row else None


async def find_tenant_by_id(db: Database, tenant_id: str) -> Tenant | None:
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        return None
    async with unscoped_platform_session(db) as session:
        row = await session.get(TenantRow, tenant_id)
    return to_tenant(row) if row else None


async def active_tenants(db: Database) -> list[Tenant]:
    """Every active tenant, in slug order (scheduled work runs for these)."""
    async with unscoped_platform_session(db) as session:
        rows = await session.scalars(
            select(TenantRow).where(TenantRow.status == "active").order_by(TenantRow.slug)
        )
        return [to_tenant(row) for row in rows]
