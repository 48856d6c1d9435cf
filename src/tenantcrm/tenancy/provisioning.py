"""Tenant lifecycle as the admin role: bootstrap, create, suspend, resume, migrate, delete.

Every step is idempotent and commits on its own, so a crashed run is finished by a rerun;
a tenant is only `active` (and so reachable) once its last step has committed.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
from dataclasses import asdict, dataclass

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from tenantcrm.auth.passwords import generate_password, hash_password, password_problem
from tenantcrm.auth.service import normalize_email, upsert_user
from tenantcrm.database import Database
from tenantcrm.jobs.queue import QUEUE_SCHEMA, install_queue
from tenantcrm.operators.service import grant_operator_tables
from tenantcrm.pii.keys import MasterKeyError, MasterKeyRing, master_key_ring
from tenantcrm.pii.store import create_tenant_keys, forget
from tenantcrm.settings import Settings
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.models import PLATFORM_SCHEMA, TenantRow
from tenantcrm.tenancy.registry import to_tenant
from tenantcrm.tenancy.tenant import (
    ACTIVE,
    DELETING,
    PROVISIONING,
    SLUG_PATTERN,
    SPARE,
    SPARE_SLUG_PATTERN,
    SUSPENDED,
    Tenant,
    schema_for,
    spare_slug,
)

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The application may add rows to these but never change or remove one (a trigger backs this up).
APPEND_ONLY_TABLES = ("audit_events",)
# Written only by a SECURITY DEFINER function of the schema (t0009): the application reads them.
READ_ONLY_TABLES = ("audit_checkpoints",)
# Functions the tenant role may call (EXECUTE is revoked from PUBLIC by their migration).
TENANT_FUNCTIONS = ("audit_prune(bigint, bytea, timestamptz, uuid, text)",)
ROLE_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ProvisioningError(Exception):
    """A lifecycle request that cannot be carried out; the message is safe to show."""


@dataclass(frozen=True)
class CreatedTenant:
    slug: str
    schema: str
    admin_email: str
    admin_password: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class SparePool:
    """What a top-up found and did: spares ready at head, behind it, and made or finished now."""

    keep: int
    ready: int
    behind: int
    made: int
    busy: bool = False  # another top-up held the pool's lock; this one did nothing

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


@dataclass(frozen=True)
class MigrationOutcome:
    slug: str
    status: str  # migrated | current | failed
    from_version: str | None
    to_version: str | None
    error: str | None = None


def _crash_point(step: str) -> None:
    """Fault injection for the crash-and-rerun tests: die without any cleanup."""
    if os.environ.get("TENANTCRM_CRASH_AFTER") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _quote(identifier: str) -> str:
    if not ROLE_NAME_PATTERN.fullmatch(identifier):
        raise ProvisioningError(f"unsafe identifier {identifier!r}")
    return f'"{identifier}"'


async def bootstrap(db: Database, settings: Settings) -> None:
    """Create the application role and bring the platform schema to head (idempotent)."""
    app_role = _quote(settings.app_role)
    async with db.admin_engine.begin() as conn:
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tenantcrm.bootstrap'))"))
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": settings.app_role}
        )
        if not exists:
            await conn.execute(text(f"CREATE ROLE {app_role} LOGIN NOINHERIT"))
        # NOINHERIT: the app role holds no tenant privilege until it sets a tenant role.
        await conn.execute(text(f"ALTER ROLE {app_role} LOGIN NOINHERIT"))
        if settings.app_role_password:
            await conn.execute(text(f"ALTER ROLE {app_role} PASSWORD {_literal(settings.app_role_password)}"))
        # An unscoped query by the app role resolves no tenant table at all.
        await conn.execute(text(f"ALTER ROLE {app_role} SET search_path TO ''"))
        database = await conn.scalar(text("SELECT current_database()"))
        quoted_database = '"' + str(database).replace('"', '""') + '"'
        await conn.execute(text(f"GRANT CONNECT ON DATABASE {quoted_database} TO {app_role}"))
        # A temporary table would outlive the transaction on a pooled connection and shadow
        # the next tenant's table of the same name: no role but the admin may create one.
        await conn.execute(text(f"REVOKE TEMPORARY ON DATABASE {quoted_database} FROM PUBLIC"))
        await migrations.upgrade_platform(conn)
        await conn.execute(text(f"GRANT USAGE ON SCHEMA {PLATFORM_SCHEMA} TO {app_role}"))
        await conn.execute(text(f"GRANT SELECT ON {PLATFORM_SCHEMA}.tenants TO {app_role}"))
        await conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {PLATFORM_SCHEMA}.login_throttle TO {app_role}")
        )
        # Wrapped keys only: unwrapping needs the master key, which the database never sees.
        await conn.execute(text(f"GRANT SELECT ON {PLATFORM_SCHEMA}.tenant_keys TO {app_role}"))
        await grant_operator_tables(conn, app_role)  # the console's tables, read and appended to only
        # The job queue lives in a schema of its own, reachable by the app role outside tenant
        # transactions only: tenant roles get nothing there, so tenant schemas stay queue-free.
        await install_queue(conn)
        await conn.execute(text(f"GRANT USAGE ON SCHEMA {QUEUE_SCHEMA} TO {app_role}"))
        await conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {QUEUE_SCHEMA} TO {app_role}")
        )
        await conn.execute(
            text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {QUEUE_SCHEMA} TO {app_role}")
        )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# Is the current (migrating) role's default grant to the tenant role in place for this schema?
_HAS_DEFAULT_PRIVILEGES = text(
    "SELECT EXISTS (SELECT 1 FROM pg_default_acl WHERE defaclrole = to_regrole(current_user)"
    " AND defaclnamespace = to_regnamespace(:schema) AND defaclobjtype = 'r')"
)


async def _ensure_default_privileges(conn: AsyncConnection, schema: str) -> bool:
    """Make tables and sequences the migrating role creates in the schema the tenant role's to use,
    as they are created; True if that was so already.

    Why: `GRANT ... ON ALL TABLES IN SCHEMA` finds a schema's tables by scanning all of pg_class
    (it has no index on the namespace), so with 1,000 tenants (about 200,000 relations) each grant
    took 60-150 ms here and migrate --all grew with the square of the tenant count.
    """
    if await conn.scalar(_HAS_DEFAULT_PRIVILEGES, {"schema": schema}):
        return True
    role = _quote(schema)
    defaults = f"ALTER DEFAULT PRIVILEGES IN SCHEMA {role} GRANT"
    await conn.execute(text(f"{defaults} SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"))
    await conn.execute(text(f"{defaults} USAGE, SELECT ON SEQUENCES TO {role}"))
    return False


async def _grant_tenant_privileges(conn: AsyncConnection, schema: str, every_table: bool = True) -> None:
    """The tenant role's rights in its schema. `every_table` grants on all existing tables and
    sequences too, which is needed once: before the schema had its default privileges."""
    role = _quote(schema)
    await conn.execute(text(f"GRANT USAGE ON SCHEMA {role} TO {role}"))
    if every_table:
        await conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {role} TO {role}")
        )
        await conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {role} TO {role}"))
    await conn.execute(text(f"REVOKE INSERT, UPDATE, DELETE ON {role}.alembic_version FROM {role}"))
    for table in APPEND_ONLY_TABLES:
        await conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {role}.{table} FROM {role}"))
    for table in READ_ONLY_TABLES:
        await conn.execute(text(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {role}.{table} FROM {role}"))
    for function in TENANT_FUNCTIONS:
        await conn.execute(text(f"GRANT EXECUTE ON FUNCTION {role}.{function} TO {role}"))


class TenantLifecycle:
    """Support staff's operations on tenants; the CLI and the console both call this."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._ring: MasterKeyRing | None = None

    def ring(self) -> MasterKeyRing:
        """The master key ring; asked for before any work so a missing key fails early."""
        if self._ring is None:
            try:
                self._ring = master_key_ring(self.settings)
            except MasterKeyError as exc:
                raise ProvisioningError(str(exc)) from exc
        return self._ring

    async def list_tenants(self, *, spares: bool = False) -> list[dict[str, str | None]]:
        """Every tenant by slug; spares (ADR 0014) only when asked for."""
        statement = select(TenantRow).order_by(TenantRow.slug)
        if not spares:
            statement = statement.where(TenantRow.status != SPARE)
        async with AsyncSession(self.db.admin_engine) as session:
            rows = (await session.scalars(statement)).all()
        return [
            {
                "slug": r.slug,
                "name": r.name,
                "status": r.status,
                "schema": r.schema_name,
                "schema_version": r.schema_version,
                "plan": r.plan,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    async def get(self, slug: str) -> Tenant:
        async with AsyncSession(self.db.admin_engine) as session:
            row = await session.scalar(select(TenantRow).where(TenantRow.slug == slug))
        if row is None:
            raise ProvisioningError(f"unknown tenant {slug!r}")
        return to_tenant(row)

    async def create(
        self, slug: str, *, name: str, admin_email: str, admin_password: str | None = None
    ) -> CreatedTenant:
        slug = slug.strip()
        if not SLUG_PATTERN.fullmatch(slug):
            raise ProvisioningError(
                f"invalid slug {slug!r}: 3-40 characters of a-z, 0-9 and '-', starting with a letter"
            )
        if SPARE_SLUG_PATTERN.fullmatch(slug):
            raise ProvisioningError(f"invalid slug {slug!r}: 'spare-' and 16 hex digits names a spare schema")
        if not name.strip():
            raise ProvisioningError("name must not be empty")
        admin_email = normalize_email(admin_email)
        if not EMAIL_PATTERN.fullmatch(admin_email):
            raise ProvisioningError("invalid admin e-mail address")
        if admin_password is not None and (problem := password_problem(admin_password)):
            raise ProvisioningError(problem)
        password = admin_password or generate_password()
        self.ring()

        # The first admin's argon2id hash (about 140 ms of CPU in a worker thread) is computed while
        # the server runs the schema's DDL, not after it.
        hashing = asyncio.ensure_future(hash_password(password))
        try:
            tenant_id, claimed = await self._register(slug, name.strip())
            schema = schema_for(tenant_id)
            _crash_point("register")
            if not claimed:  # the pool was empty: build the schema now (a rerun always does)
                await self._create_role_and_schema(schema)
                _crash_point("schema")
                await self._migrate_schema(tenant_id, schema)
                _crash_point("migrate")
            await self._activate(tenant_id, schema, admin_email, await hashing)
        finally:
            hashing.cancel()  # a no-op once done; otherwise its result is of no use
        return CreatedTenant(slug=slug, schema=schema, admin_email=admin_email, admin_password=password)

    async def _register(self, slug: str, name: str) -> tuple[str, bool]:
        """The tenant's id, and whether it is a spare claimed just now (its schema is ready)."""
        async with self.db.admin_engine.begin() as conn:
            row = (
                await conn.execute(
                    select(TenantRow.id, TenantRow.status).where(TenantRow.slug == slug).with_for_update()
                )
            ).first()
            if row is not None:
                if row.status != PROVISIONING:
                    raise ProvisioningError(f"tenant {slug!r} already exists")
                return row.id, False  # resume a half-built tenant
            claimed = await conn.scalar(_claim_spare(slug, name, migrations.head("tenant")))
            if claimed is not None:
                return claimed, True
            tenant_id = secrets.token_hex(8)
            await conn.execute(
                TenantRow.__table__.insert().values(
                    id=tenant_id,
                    slug=slug,
                    name=name,
                    status=PROVISIONING,
                    schema_name=schema_for(tenant_id),
                )
            )
            return tenant_id, False

    async def top_up_spares(self, keep: int) -> SparePool:
        """Provision spares until `keep` are ready at head, finishing any a crashed run left half-built.

        One top-up at a time (a session lock): a second caller returns at once with `busy`.
        """
        if keep < 0:
            raise ProvisioningError("the number of spares to keep must be 0 or more")
        self.ring()
        head = migrations.head("tenant")
        made = 0
        async with self.db.admin_engine.connect() as lock:
            locked = await lock.scalar(text("SELECT pg_try_advisory_lock(hashtext('tenantcrm.spares'))"))
            await lock.commit()
            if not locked:
                ready, behind = await self._count_spares(head)
                return SparePool(keep, ready, behind, 0, busy=True)
            try:
                for tenant_id in await self._half_built_spares():
                    await self._build_spare(tenant_id)
                    made += 1
                ready, behind = await self._count_spares(head)
                while ready < keep:
                    await self._build_spare(await self._register_spare())
                    made += 1
                    ready += 1
            finally:
                await lock.execute(text("SELECT pg_advisory_unlock(hashtext('tenantcrm.spares'))"))
                await lock.commit()
        return SparePool(keep, ready, behind, made)

    async def _count_spares(self, head: str) -> tuple[int, int]:
        async with AsyncSession(self.db.admin_engine) as session:
            at_head = TenantRow.schema_version == head
            ready, behind = (
                await session.execute(
                    select(
                        func.count().filter(at_head),
                        func.count().filter(~at_head | TenantRow.schema_version.is_(None)),
                    ).where(TenantRow.status == SPARE)
                )
            ).one()
        return ready, behind

    async def _half_built_spares(self) -> list[str]:
        async with AsyncSession(self.db.admin_engine) as session:
            rows = await session.scalars(
                select(TenantRow.id).where(
                    TenantRow.status == PROVISIONING, TenantRow.slug == "spare-" + TenantRow.id
                )
            )
            return list(rows)

    async def _register_spare(self) -> str:
        tenant_id = secrets.token_hex(8)
        async with self.db.admin_engine.begin() as conn:
            await conn.execute(
                TenantRow.__table__.insert().values(
                    id=tenant_id,
                    slug=spare_slug(tenant_id),
                    name="",
                    status=PROVISIONING,
                    schema_name=schema_for(tenant_id),
                )
            )
        return tenant_id

    async def _build_spare(self, tenant_id: str) -> None:
        """Schema, Alembic to head, grants and keys; it becomes `spare` in the migration's transaction."""
        schema = schema_for(tenant_id)
        _crash_point("spare-register")
        await self._create_role_and_schema(schema)
        async with self.db.admin_engine.begin() as conn:
            await self.migrate_in(conn, tenant_id, schema)
            await conn.execute(
                update(TenantRow)
                .where(TenantRow.id == tenant_id, TenantRow.status == PROVISIONING)
                .values(status=SPARE, updated_at=text("now()"))
            )

    async def _create_role_and_schema(self, schema: str) -> None:
        role = _quote(schema)
        app_role = _quote(self.settings.app_role)
        async with self.db.admin_engine.begin() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": schema})
            if not exists:
                await conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
            await conn.execute(text(f"GRANT {role} TO {app_role}"))
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {role}"))

    async def _migrate_schema(self, tenant_id: str, schema: str) -> str:
        async with self.db.admin_engine.begin() as conn:
            return await self.migrate_in(conn, tenant_id, schema)

    async def migrate_in(
        self, conn: AsyncConnection, tenant_id: str, schema: str, using: migrations.Migrator | None = None
    ) -> str:
        """Alembic to head, grants, keys and the registry's version mirror, in the caller's transaction."""
        # Before Alembic, so the tables it creates are granted as they are made. A schema migrated
        # before it had them (provisioned by older code) gets its existing tables granted once.
        had_defaults = await _ensure_default_privileges(conn, schema)
        backfill = not had_defaults and await migrations.tenant_version(conn, schema) is not None
        version = await migrations.upgrade_tenant(conn, schema, using=using)
        await _grant_tenant_privileges(conn, schema, every_table=backfill)
        # Idempotent: a tenant provisioned before PII encryption gets its keys here too.
        await create_tenant_keys(conn, self.ring(), tenant_id)
        await conn.execute(
            update(TenantRow)
            .where(TenantRow.id == tenant_id)
            .values(schema_version=version, updated_at=text("now()"))
        )
        return version

    async def _activate(self, tenant_id: str, schema: str, email: str, password_hash: str) -> None:
        async with self.db.admin_engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
            await upsert_user(
                AsyncSession(bind=conn),
                email=email,
                password_hash=password_hash,
                role="admin",
                display_name="Administrator",
            )
            await conn.execute(
                update(TenantRow)
                .where(TenantRow.id == tenant_id)
                .values(status=ACTIVE, updated_at=text("now()"))
            )

    async def set_status(self, slug: str, status: str) -> Tenant:
        """Suspend (`suspended`) or resume (`active`) a provisioned tenant."""
        allowed_from = {SUSPENDED: {ACTIVE, SUSPENDED}, ACTIVE: {SUSPENDED, ACTIVE}}[status]
        tenant = await self.get(slug)
        if tenant.status not in allowed_from:
            raise ProvisioningError(f"tenant {slug!r} is {tenant.status}")
        async with self.db.admin_engine.begin() as conn:
            await conn.execute(
                update(TenantRow)
                .where(TenantRow.slug == slug)
                .values(status=status, updated_at=text("now()"))
            )
        return await self.get(slug)

    async def delete(self, slug: str) -> None:
        """Drop the tenant's schema, role and registry row; a rerun finishes a crashed delete."""
        tenant = await self.get(slug)
        async with self.db.admin_engine.begin() as conn:
            await conn.execute(update(TenantRow).where(TenantRow.id == tenant.id).values(status=DELETING))
        role = _quote(tenant.schema)
        async with self.db.admin_engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {role} CASCADE"))
            if await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": tenant.schema}):
                await conn.execute(text(f"DROP OWNED BY {role}"))
                await conn.execute(text(f"DROP ROLE {role}"))
            # Its wrapped keys go with the registry row (ON DELETE CASCADE): crypto-shredding.
            await conn.execute(delete(TenantRow).where(TenantRow.id == tenant.id))
        forget(tenant.id)

    async def migrate(self, slug: str | None = None) -> list[MigrationOutcome]:
        """Bring one tenant, or every provisioned tenant, to head; failures stay isolated."""
        tenants = [await self.get(slug)] if slug is not None else await self.migratable()
        return [await self._migrate_one(tenant) for tenant in tenants]

    async def migratable(self) -> list[Tenant]:
        """Provisioned tenants (active, suspended, and spares so they stay claimable), by slug."""
        async with AsyncSession(self.db.admin_engine) as session:
            rows = await session.scalars(
                select(TenantRow)
                .where(TenantRow.status.in_([ACTIVE, SUSPENDED, SPARE]))
                .order_by(TenantRow.slug)
            )
            return [to_tenant(r) for r in rows]

    async def _migrate_one(
        self, tenant: Tenant, using: migrations.Migrator | None = None
    ) -> MigrationOutcome:
        """One tenant in one transaction: its version read, then migrated unless at head."""
        target = (using or migrations.migrator("tenant")).head
        before: str | None = None
        try:
            async with self.db.admin_engine.begin() as conn:
                before = await migrations.tenant_version(conn, tenant.schema)
                if before == target:
                    return MigrationOutcome(tenant.slug, "current", before, before)
                after = await self.migrate_in(conn, tenant.id, tenant.schema, using)
            return MigrationOutcome(tenant.slug, "migrated", before, after)
        except Exception as exc:  # one tenant's failure must not stop the others
            return failed_outcome(tenant, before, exc)


def _claim_spare(slug: str, name: str, head: str) -> ReturningUpdate:
    """One statement: the oldest spare at head, unless another create holds it, becomes this tenant.

    Its id, schema, role and keys stay; only the registry row changes (ADR 0014).
    """
    spare = (
        select(TenantRow.id)
        .where(TenantRow.status == SPARE, TenantRow.schema_version == head)
        .order_by(TenantRow.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(TenantRow)
        .where(TenantRow.id == spare)
        .values(slug=slug, name=name, status=PROVISIONING, created_at=func.now(), updated_at=func.now())
        .returning(TenantRow.id)
    )


def failed_outcome(tenant: Tenant, before: str | None, exc: Exception) -> MigrationOutcome:
    return MigrationOutcome(
        tenant.slug, "failed", before, before, error=f"{type(exc).__name__}: {_first_line(exc)}"
    )


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
