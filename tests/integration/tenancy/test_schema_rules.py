"""Tenant DDL keeps the rules that schema-per-tenant (and Citus schema sharding) relies on."""

from __future__ import annotations

from sqlalchemy import text

from tenantcrm.tenancy import migrations


async def test_tenant_schema_has_no_custom_types(db, tenant_a):
    async with db.admin_engine.connect() as conn:
        types = await conn.scalars(
            text(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE n.nspname = :s AND t.typtype IN ('e', 'd', 'r', 'm')"
                " OR (n.nspname = :s AND t.typtype = 'c' AND t.typrelid = 0)"
            ),
            {"s": tenant_a.tenant.schema},
        )
        assert types.all() == []


async def test_no_foreign_key_leaves_the_tenant_schema(db, tenant_a):
    async with db.admin_engine.connect() as conn:
        leaving = await conn.scalars(
            text(
                "SELECT c.conname FROM pg_constraint c"
                " JOIN pg_class src ON src.oid = c.conrelid"
                " JOIN pg_namespace sn ON sn.oid = src.relnamespace"
                " JOIN pg_class dst ON dst.oid = c.confrelid"
                " JOIN pg_namespace dn ON dn.oid = dst.relnamespace"
                " WHERE c.contype = 'f' AND sn.nspname = :s AND dn.nspname <> :s"
            ),
            {"s": tenant_a.tenant.schema},
        )
        assert leaving.all() == []
        inside = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_constraint c JOIN pg_class src ON src.oid = c.conrelid"
                " JOIN pg_namespace sn ON sn.oid = src.relnamespace WHERE c.contype = 'f' AND sn.nspname = :s"
            ),
            {"s": tenant_a.tenant.schema},
        )
        assert inside > 0  # the query does see foreign keys: it could fail


async def test_tenant_role_owns_nothing_and_app_role_owns_no_tenant_table(db, settings, tenant_a):
    async with db.admin_engine.connect() as conn:
        owners = set(
            await conn.scalars(
                text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = :s"),
                {"s": tenant_a.tenant.schema},
            )
        )
        assert owners and tenant_a.tenant.schema not in owners and settings.app_role not in owners
        inherits = await conn.scalar(
            text("SELECT rolinherit FROM pg_roles WHERE rolname = :r"), {"r": settings.app_role}
        )
        assert inherits is False


async def test_version_is_recorded_in_the_schema_and_the_registry(db, tenant_a):
    async with db.admin_engine.connect() as conn:
        inside = await conn.scalar(
            text(f'SELECT version_num FROM "{tenant_a.tenant.schema}".alembic_version')
        )
        registry = await conn.scalar(
            text("SELECT schema_version FROM platform.tenants WHERE id = :i"), {"i": tenant_a.tenant.id}
        )
    assert inside == registry == migrations.head("tenant")
