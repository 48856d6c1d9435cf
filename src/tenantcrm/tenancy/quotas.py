"""Per-tenant quotas (users, customers, storage): read and set them, and refuse writes beyond them.

Limits live on the registry row (p0003; NULL is no limit) and travel with the Tenant that every
request and job reads anyway, so enforcement inside a tenant transaction needs no platform access.
A check takes a per-tenant advisory lock first, and only when a limit is set: two writers at the
last free place cannot both pass, and tenants without limits pay nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.models import User
from tenantcrm.customers.models import Customer
from tenantcrm.database import Database
from tenantcrm.messages import N_
from tenantcrm.tenancy.models import TenantRow
from tenantcrm.tenancy.session import tenant_session, unscoped_platform_session
from tenantcrm.tenancy.tenant import QuotaLimits, Tenant
from tenantcrm.validation import FieldError, InvalidInput

MIB = 1024 * 1024
MAX_LIMIT = 10**12
# Every table of the tenant's schema with its indexes and TOAST; the tenant role may ask this.
# Found through pg_depend (each relation depends on its schema, indexed by the referenced object):
# pg_class has no index on the schema, and scanning it costs tens of ms with 1,000 tenants.
STORAGE_BYTES = text(
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_depend d"
    " JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'm', 'p')"
    " WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = to_regnamespace(current_schema())"
    " AND d.classid = 'pg_class'::regclass"
)
LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_STORAGE_CACHE = "tenantcrm.quotas.storage_bytes"

MESSAGES: Final = {
    "users": N_(
        "Your institution has reached its limit of {limit} active users, so nothing was saved."
        " Ask your service provider to raise it."
    ),
    "customers": N_(
        "Your institution has reached its limit of {limit} customers, so nothing was saved."
        " Ask your service provider to raise it."
    ),
    "import": N_(
        "This import would bring your institution to {total} customers, above its limit of {limit},"
        " so nothing was imported. Ask your service provider to raise it."
    ),
    "storage_mb": N_(
        "Your institution has used its storage limit of {limit} MB, so nothing was saved."
        " Ask your service provider to raise it."
    ),
}
# Stored as an import job's error when its commit finds the tenant at a quota (message ids
# without placeholders).
IMPORT_REFUSED: Final = {
    "customers": N_(
        "Importing these rows would take your institution over its customer limit, so nothing was imported."
    ),
    "storage_mb": N_("Your institution has used its storage limit, so nothing was imported."),
}


class QuotaExceeded(InvalidInput):
    """A write refused because the tenant is at a quota; nothing was written.

    An InvalidInput, so every form and command that shows refused input shows it too; pages and
    GraphQL that know it show it as what it is.
    """

    def __init__(self, resource: str, limit: int, usage: int, adding: int = 1) -> None:
        key = "import" if resource == "customers" and adding > 1 else resource
        params = {"limit": f"{limit:,}", "total": f"{usage + adding:,}"}
        super().__init__([FieldError("quota", f"quota_{resource}", MESSAGES[key], params)])
        self.resource = resource
        self.limit = limit
        self.usage = usage


@dataclass(frozen=True)
class Quotas:
    """A tenant's limits and what it uses now; counts and sizes only, never its data."""

    limits: QuotaLimits
    users: int
    customers: int
    storage_bytes: int

    @property
    def storage_mb(self) -> int:
        """Whole MB (MiB) used, a started one counted."""
        return -(-self.storage_bytes // MIB)

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": {"limit": self.limits.users, "used": self.users},
            "customers": {"limit": self.limits.customers, "used": self.customers},
            "storage_mb": {"limit": self.limits.storage_mb, "used": self.storage_mb},
        }


# --- the console's and the CLI's side: read and set ---


async def get_quotas(db: Database, tenant: Tenant) -> Quotas:
    """The registry's current limits and the tenant's usage (two short transactions)."""
    limits = await _limits(db, tenant.id)
    async with tenant_session(db, tenant) as session:
        users = await _active_users(session)
        customers = await _customers(session)
        storage = int(await session.scalar(STORAGE_BYTES) or 0)
    return Quotas(limits, users, customers, storage)


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
"""set_quotas' default: leave that limit as it is (None removes a limit)."""


async def set_quotas(
    db: Database,
    tenant: Tenant,
    *,
    users: int | None = KEEP,
    customers: int | None = KEEP,
    storage_mb: int | None = KEEP,
) -> Quotas:
    """Change the given limits (None = no limit) as the admin role; returns limits and usage.

    A limit below the current usage is allowed: it refuses further growth and removes nothing.
    """
    given = {"max_users": users, "max_customers": customers, "max_storage_mb": storage_mb}
    values = {column: value for column, value in given.items() if value is not KEEP}
    problems = [
        FieldError(
            column.removeprefix("max_"),
            "invalid_quota",
            N_("Enter a whole number of 0 or more, or leave it empty for no limit."),
        )
        for column, value in values.items()
        if value is not None
        and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT)
    ]
    if problems:
        raise InvalidInput(problems)
    if values:
        async with db.admin_engine.begin() as conn:
            await conn.execute(
                update(TenantRow).where(TenantRow.id == tenant.id).values(**values, updated_at=func.now())
            )
    return await get_quotas(db, tenant)


async def _limits(db: Database, tenant_id: str) -> QuotaLimits:
    async with unscoped_platform_session(db) as session:
        row = (
            await session.execute(
                select(TenantRow.max_users, TenantRow.max_customers, TenantRow.max_storage_mb).where(
                    TenantRow.id == tenant_id
                )
            )
        ).one()
    return QuotaLimits(*row)


# --- enforcement, inside the tenant transaction that would write ---


async def check_users(session: AsyncSession, tenant: Tenant, adding: int = 1) -> None:
    """Refuse `adding` more active users beyond the tenant's limit (a new user or one enabled)."""
    limit = tenant.limits.users
    if limit is None:
        return
    await _lock(session, tenant, "users")
    used = await _active_users(session)
    if used + adding > limit:
        raise QuotaExceeded("users", limit, used, adding)


async def check_customers(session: AsyncSession, tenant: Tenant, adding: int = 1) -> None:
    """Refuse `adding` more customers beyond the customer limit, or any while storage is used up."""
    limits = tenant.limits
    if limits.customers is not None:
        await _lock(session, tenant, "customers")
        used = await _customers(session)
        if used + adding > limits.customers:
            raise QuotaExceeded("customers", limits.customers, used, adding)
    await check_storage(session, tenant)


async def check_storage(session: AsyncSession, tenant: Tenant) -> None:
    """Refuse a growing write once the schema's size has reached the storage limit.

    The size of what is about to be written is not known beforehand, so the check is on the size
    reached: one write may take a tenant past its limit, the next is refused. The size is measured
    once per transaction (a page request, a job step) and kept on the session: it opens every
    relation of the schema and stats its files (~40 tables with their indexes; 2-50 ms here with
    1,000 tenants, depending on the load).
    """
    limit = tenant.limits.storage_mb
    if limit is None:
        return
    size = session.info.get(_STORAGE_CACHE)
    if size is None:
        size = session.info[_STORAGE_CACHE] = int(await session.scalar(STORAGE_BYTES) or 0)
    if size >= limit * MIB:
        raise QuotaExceeded("storage_mb", limit, size // MIB)


async def _lock(session: AsyncSession, tenant: Tenant, resource: str) -> None:
    await session.execute(LOCK, {"key": f"tenantcrm.quota:{tenant.id}:{resource}"})


async def _active_users(session: AsyncSession) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(User).where(User.status == "active")) or 0
    )


async def _customers(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)
