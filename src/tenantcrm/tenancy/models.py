"""Platform-schema tables: the tenant registry and sign-in throttling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantcrm.tenancy.tenant import QuotaLimits, Tenant

PLATFORM_SCHEMA = "platform"


class PlatformBase(DeclarativeBase):
    metadata = MetaData(schema=PLATFORM_SCHEMA)


class TenantRow(PlatformBase):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    plan: Mapped[str] = mapped_column(Text, server_default="standard")
    schema_name: Mapped[str] = mapped_column(Text, unique=True)
    schema_version: Mapped[str | None] = mapped_column(Text)
    # Quotas (p0003): NULL means no limit.
    max_users: Mapped[int | None] = mapped_column(BigInteger)
    max_customers: Mapped[int | None] = mapped_column(BigInteger)
    max_storage_mb: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def to_tenant(row: Any) -> Tenant:
    """A registry row (the mapped TenantRow, or a row of its columns) as the Tenant the app passes."""
    return Tenant(
        id=row.id,
        slug=row.slug,
        name=row.name,
        status=row.status,
        schema=row.schema_name,
        schema_version=row.schema_version,
        limits=QuotaLimits(row.max_users, row.max_customers, row.max_storage_mb),
    )


class TenantBase(DeclarativeBase):
    """Base of every tenant-schema table: unqualified names, resolved by the tenant's search_path."""
