"""The console's view of tenants (metadata and counts, never personal data) and its lifecycle actions.

Counts are read inside each tenant's own unit of work (`tenant_session`, as the tenant role), so the
console needs no privilege on any tenant schema beyond what the application already has; sizes come
from the catalog. Every action goes through `TenantLifecycle`, the service the CLI uses, and is
recorded in the operator event log.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text

from tenantcrm.auth.service import normalize_email
from tenantcrm.database import Database
from tenantcrm.messages import N_
from tenantcrm.operators.service import EMAIL_PATTERN, OperatorPrincipal, record
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.maintenance import is_behind
from tenantcrm.tenancy.models import TenantRow
from tenantcrm.tenancy.provisioning import CreatedTenant, ProvisioningError, TenantLifecycle
from tenantcrm.tenancy.quotas import Quotas, get_quotas, set_quotas
from tenantcrm.tenancy.registry import find_tenant_by_slug, to_tenant
from tenantcrm.tenancy.session import tenant_session, unscoped_platform_session
from tenantcrm.tenancy.tenant import ACTIVE, SLUG_PATTERN, SPARE, SUSPENDED, QuotaLimits, Tenant
from tenantcrm.validation import FieldError, InvalidInput

PAGE_SIZE = 50
# Tenant units of work opened at once to count a page of tenants.
COUNT_CONCURRENCY = 4

_SIZES = text(
    "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)"
    " FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'p')"
    " WHERE n.nspname = ANY(:schemas) GROUP BY n.nspname"
)
# Unqualified names: inside tenant_session they resolve to the tenant schema alone.
_VERSION = text("SELECT version_num FROM alembic_version")
_COUNTS = text(
    "SELECT (SELECT count(*) FROM users WHERE status = 'active'), (SELECT count(*) FROM customers),"
    " (SELECT version_num FROM alembic_version)"
)


@dataclass(frozen=True)
class TenantOverview:
    slug: str
    name: str
    status: str
    plan: str
    created_at: datetime
    registry_version: str | None
    schema_version: str | None
    """As the tenant's own alembic_version table says (None when it could not be read)."""
    behind: bool
    size_bytes: int | None
    users: int | None
    customers: int | None
    limits: QuotaLimits


@dataclass(frozen=True)
class TenantPage:
    tenants: list[TenantOverview]
    next_after: str | None
    head: str
    spares: int = 0
    """Spare schemas ready for the next provisioning (ADR 0014): shown as a count, never listed."""


class TenantNotFound(Exception):
    """No tenant of that slug."""


class ConsoleRefusal(Exception):
    """An action refused before anything changed; `message` is an English msgid, `params` fill it."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


async def tenant_page(db: Database, operator: OperatorPrincipal, after: str | None = None) -> TenantPage:
    """A page of tenants by slug with their status, plan, size, counts and migration version."""
    statement = (
        select(TenantRow).where(TenantRow.status != SPARE).order_by(TenantRow.slug).limit(PAGE_SIZE + 1)
    )
    if after and SLUG_PATTERN.fullmatch(after):
        statement = statement.where(TenantRow.slug > after)
    async with unscoped_platform_session(db) as session:
        rows = list((await session.scalars(statement)).all())
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        sizes = dict((await session.execute(_SIZES, {"schemas": [row.schema_name for row in rows]})).all())
        spares = await session.scalar(select(func.count()).where(TenantRow.status == SPARE))
    gate = asyncio.Semaphore(COUNT_CONCURRENCY)

    async def counted(row: TenantRow) -> tuple[int | None, int | None, str | None]:
        tenant = to_tenant(row)
        if tenant.status not in (ACTIVE, SUSPENDED):
            return None, None, None  # half-built or being deleted: its tables may not be there
        async with gate:
            return await tenant_counts(db, tenant)

    counts = await asyncio.gather(*(counted(row) for row in rows))
    tenants = [
        TenantOverview(
            slug=row.slug,
            name=row.name,
            status=row.status,
            plan=row.plan,
            created_at=row.created_at,
            registry_version=row.schema_version,
            schema_version=version,
            behind=is_behind(row.schema_version),
            size_bytes=sizes.get(row.schema_name),
            users=users,
            customers=customers,
            limits=to_tenant(row).limits,
        )
        for row, (users, customers, version) in zip(rows, counts, strict=True)
    ]
    return TenantPage(
        tenants, rows[-1].slug if more and rows else None, migrations.head("tenant"), spares or 0
    )


async def tenant_counts(db: Database, tenant: Tenant) -> tuple[int | None, int | None, str | None]:
    """Active users, customers and the schema's own migration revision, read as the tenant role."""
    try:
        async with tenant_session(db, tenant) as session:
            users, customers, version = (await session.execute(_COUNTS)).one()
    except Exception:  # a damaged schema must not take the whole list down; it shows as unknown
        return None, None, None
    return users, customers, version


async def schema_version(db: Database, tenant: Tenant) -> str | None:
    """The schema's own migration revision, read as the tenant role (None when it cannot be read)."""
    try:
        async with tenant_session(db, tenant) as session:
            return await session.scalar(_VERSION)
    except Exception:  # a damaged schema shows as unknown, as in the list
        return None


# --- lifecycle actions ---


async def provision(
    lifecycle: TenantLifecycle, operator: OperatorPrincipal, *, slug: str, name: str, admin_email: str
) -> CreatedTenant:
    """The CLI's `tenants create`; the first admin's generated password is for the caller to show once."""
    slug, name, admin_email = slug.strip(), name.strip(), normalize_email(admin_email)
    errors = []
    if not SLUG_PATTERN.fullmatch(slug):
        errors.append(
            FieldError(
                "slug", "invalid_slug", N_("3 to 40 characters: a-z, 0-9 and '-', starting with a letter.")
            )
        )
    elif await find_tenant_by_slug(lifecycle.db, slug) is not None:
        errors.append(FieldError("slug", "taken", N_("A tenant with this slug already exists.")))
    if not name:
        errors.append(FieldError("name", "required", N_("Enter the institution's name.")))
    if not EMAIL_PATTERN.fullmatch(admin_email):
        errors.append(FieldError("admin_email", "invalid_email", N_("Enter a valid e-mail address.")))
    if errors:
        raise InvalidInput(errors)
    try:
        created = await lifecycle.create(slug, name=name, admin_email=admin_email)
    except ProvisioningError as exc:
        raise ConsoleRefusal("{problem}", problem=str(exc)) from exc
    tenant = await lifecycle.get(created.slug)
    # The admin's e-mail address is the institution's data: the log names the tenant only.
    await record(lifecycle.db, operator=operator, action="tenant.create", tenant=tenant)
    return created


async def set_status(
    lifecycle: TenantLifecycle, operator: OperatorPrincipal, slug: str, status: str
) -> Tenant:
    """Suspend (`suspended`) or resume (`active`) a provisioned tenant."""
    before = await _existing(lifecycle, slug)
    if before.status not in (ACTIVE, SUSPENDED):
        raise ConsoleRefusal(
            N_("This tenant is {status}: it cannot be suspended or resumed."), status=before.status
        )
    tenant = await lifecycle.set_status(slug, status)
    action = "tenant.suspend" if status == SUSPENDED else "tenant.resume"
    await record(
        lifecycle.db, operator=operator, action=action, tenant=tenant, details={"from": before.status}
    )
    return tenant


QUOTA_FIELDS = ("users", "customers", "storage_mb")


async def quotas(db: Database, operator: OperatorPrincipal, tenant: Tenant) -> Quotas | None:
    """Limits and usage (counts and size only); None while the tenant has no tables to count."""
    if tenant.status not in (ACTIVE, SUSPENDED):
        return None
    return await get_quotas(db, tenant)


async def set_tenant_quotas(
    lifecycle: TenantLifecycle, operator: OperatorPrincipal, slug: str, form: dict[str, str]
) -> Quotas:
    """The console's quota form: a whole number, or empty for no limit, per resource."""
    tenant = await _existing(lifecycle, slug)
    if tenant.status not in (ACTIVE, SUSPENDED):
        raise ConsoleRefusal(
            N_("This tenant is {status}: its quotas cannot be set now."), status=tenant.status
        )
    limits: dict[str, int | None] = {}
    errors = []
    for name in QUOTA_FIELDS:
        text_value = form.get(name, "").strip()
        if not text_value:
            limits[name] = None
        elif text_value.isascii() and text_value.isdigit():
            limits[name] = int(text_value)
        else:
            errors.append(
                FieldError(
                    name,
                    "invalid_quota",
                    N_("Enter a whole number of 0 or more, or leave it empty for no limit."),
                )
            )
    if errors:
        raise InvalidInput(errors)
    result = await set_quotas(lifecycle.db, tenant, **limits)  # range checked there, nothing set on a refusal
    await record(lifecycle.db, operator=operator, action="tenant.quotas", tenant=tenant, details=limits)
    return result


async def _existing(lifecycle: TenantLifecycle, slug: str) -> Tenant:
    tenant = await find_tenant_by_slug(lifecycle.db, slug)
    if tenant is None or tenant.status == SPARE:
        raise TenantNotFound(slug)
    return tenant


async def delete(lifecycle: TenantLifecycle, operator: OperatorPrincipal, slug: str, typed: str) -> None:
    """Refused unless the operator typed the tenant's slug exactly: the data cannot come back."""
    tenant = await _existing(lifecycle, slug)
    if typed.strip() != tenant.slug:
        raise InvalidInput(
            [FieldError("confirm", "mismatch", N_("Type the tenant's slug exactly to delete it."))]
        )
    await lifecycle.delete(slug)
    await record(lifecycle.db, operator=operator, action="tenant.delete", tenant=tenant)
