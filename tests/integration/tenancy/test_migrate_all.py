"""`tenants migrate --all [--concurrency N]`: serially or in worker processes, one outcome per tenant,
failures isolated, a rerun finishes."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text

from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.migrate_all import migrate_all
from tests.conftest import make_tenant
from tests.integration.tenancy.test_cli import run_cli


@pytest.fixture
def env(settings, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    return env


async def _emptied(db, tenants) -> None:
    async with db.admin_engine.begin() as conn:
        for t in tenants:
            await conn.execute(text(f'DROP SCHEMA "{t.tenant.schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA "{t.tenant.schema}"'))


async def _version(db, schema: str) -> str | None:
    async with db.admin_engine.connect() as conn:
        return await migrations.tenant_version(conn, schema)


async def test_cli_concurrency_isolates_a_failure_and_a_rerun_finishes(env, db, lifecycle):
    # Four behind with two workers: enough to start worker processes (fewer migrate in-process).
    tenants = [await make_tenant(lifecycle, "parcli") for _ in range(4)]
    broken = tenants[0]
    await _emptied(db, tenants)
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'CREATE TABLE "{broken.tenant.schema}".customers (id int)'))

    result = run_cli(env, "tenants", "migrate", "--all", "--concurrency", "2", "--json")
    assert result.returncode == 1
    assert "migration failed" in result.stderr and broken.slug in result.stderr
    outcomes = {o["slug"]: o for o in json.loads(result.stdout)}
    assert outcomes[broken.slug]["status"] == "failed" and "customers" in outcomes[broken.slug]["error"]
    for t in tenants[1:]:
        assert outcomes[t.slug]["status"] == "migrated" and outcomes[t.slug]["from_version"] is None
        assert (
            await _version(db, t.tenant.schema) == outcomes[t.slug]["to_version"] == migrations.head("tenant")
        )
    assert await _version(db, broken.tenant.schema) is None  # rolled back whole

    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE "{broken.tenant.schema}".customers'))
    rerun = run_cli(env, "tenants", "migrate", "--all", "--concurrency", "2", "--json")
    outcomes = {o["slug"]: o for o in json.loads(rerun.stdout)}
    assert outcomes[broken.slug]["status"] == "migrated"
    assert [outcomes[t.slug]["status"] for t in tenants[1:]] == ["current"] * 3
    assert await _version(db, broken.tenant.schema) == migrations.head("tenant")


def test_concurrency_below_one_is_refused(env):
    refused = run_cli(env, "tenants", "migrate", "--all", "--concurrency", "0")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        "error: --concurrency must be at least 1"
    ]


async def test_serially_on_one_connection_a_failure_midway_stays_its_own(db, lifecycle):
    tenants = sorted([await make_tenant(lifecycle, "serial") for _ in range(3)], key=lambda t: t.slug)
    first, broken, last = tenants  # migrate_all goes in slug order: the failure is in the middle
    # Emptied schemas whose registry rows still say head: the versions are read from the schemas.
    await _emptied(db, tenants)
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'CREATE TABLE "{broken.tenant.schema}".customers (id int)'))

    outcomes = {o.slug: o for o in await migrate_all(lifecycle)}
    assert outcomes[broken.slug].status == "failed" and "customers" in outcomes[broken.slug].error
    assert await _version(db, broken.tenant.schema) is None  # rolled back whole
    for t in (first, last):
        assert (outcomes[t.slug].status, outcomes[t.slug].from_version) == ("migrated", None)
        assert await _version(db, t.tenant.schema) == migrations.head("tenant")
        assert (await lifecycle.get(t.slug)).schema_version == migrations.head("tenant")

    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE "{broken.tenant.schema}".customers'))
    rerun = {o.slug: o for o in await migrate_all(lifecycle)}
    assert [rerun[t.slug].status for t in tenants] == ["current", "migrated", "current"]
    assert await _version(db, broken.tenant.schema) == migrations.head("tenant")


async def test_versions_of_many_schemas_in_one_read(db, lifecycle):
    ready, emptied = await make_tenant(lifecycle, "versions"), await make_tenant(lifecycle, "versions")
    await _emptied(db, [emptied])
    missing = "0123456789abcdef"  # a registry row whose schema is gone reads as never migrated
    async with db.admin_engine.connect() as conn:
        versions = await migrations.tenant_versions(conn, [ready.tenant.id, emptied.tenant.id, missing])
    assert versions == {ready.tenant.id: migrations.head("tenant"), emptied.tenant.id: None, missing: None}


async def test_a_migrator_with_an_extra_revision_folder(db, lifecycle):
    # The bench's folder: one revision after the shipped head, adding customers.bench_note.
    extra = migrations.Migrator("tenant", REPO_ROOT / "bench" / "revisions")
    assert extra.head == "bench_added_column" and migrations.head("tenant") in extra.older_revisions()
    org = await make_tenant(lifecycle, "extra")
    try:
        outcome = await lifecycle._migrate_one(org.tenant, extra)
        assert (outcome.status, outcome.to_version) == ("migrated", "bench_added_column")
        assert (await lifecycle.get(org.slug)).schema_version == "bench_added_column"
        async with db.admin_engine.begin() as conn:
            assert (
                await conn.scalar(
                    text(
                        "SELECT count(*) FROM information_schema.columns"
                        " WHERE table_schema = :s AND column_name = 'bench_note'"
                    ),
                    {"s": org.tenant.schema},
                )
                == 1
            )
            await conn.run_sync(extra.downgrade, org.tenant.schema, "-1")
        assert await _version(db, org.tenant.schema) == migrations.head("tenant")
    finally:
        await lifecycle.delete(org.slug)


UNGRANTED = text(
    "SELECT count(*) FROM pg_tables WHERE schemaname = :s"
    " AND NOT has_table_privilege(:s, format('%I.%I', schemaname, tablename), 'SELECT')"
)
DEFAULTS = text(
    "SELECT count(*) FROM pg_default_acl WHERE defaclnamespace = to_regnamespace(:s)"
    " AND defaclrole = to_regrole(current_user)"
)


async def test_tables_are_granted_through_default_privileges(db, lifecycle):
    org = await make_tenant(lifecycle, "grants")
    schema = org.tenant.schema
    async with db.admin_engine.connect() as conn:
        # Provisioning granted nothing table by table (no GRANT ... ON ALL TABLES): the defaults did.
        assert await conn.scalar(DEFAULTS, {"s": schema}) == 2  # tables and sequences
        assert await conn.scalar(UNGRANTED, {"s": schema}) == 0
        for table, privilege in (("alembic_version", "INSERT"), ("audit_events", "UPDATE")):
            assert not await conn.scalar(
                text("SELECT has_table_privilege(CAST(:s AS text), CAST(:t AS text), CAST(:p AS text))"),
                {"s": schema, "t": f"{schema}.{table}", "p": privilege},
            )


async def test_a_tenant_from_before_default_privileges_gets_them_and_its_grants_once(db, lifecycle):
    org = await make_tenant(lifecycle, "grants")
    schema, role = org.tenant.schema, f'"{org.tenant.schema}"'
    async with db.admin_engine.begin() as conn:  # as older code left a tenant
        for kind in ("TABLES", "SEQUENCES"):
            await conn.execute(
                text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {role} REVOKE ALL ON {kind} FROM {role}")
            )
        await conn.execute(text(f"REVOKE ALL ON {role}.customers FROM {role}"))
        await conn.run_sync(migrations.migrator("tenant").downgrade, schema, "-1")
        assert await conn.scalar(DEFAULTS, {"s": schema}) == 0
        assert await conn.scalar(UNGRANTED, {"s": schema}) == 1

    assert (await lifecycle._migrate_one(org.tenant)).status == "migrated"
    async with db.admin_engine.connect() as conn:
        assert await conn.scalar(DEFAULTS, {"s": schema}) == 2
        assert await conn.scalar(UNGRANTED, {"s": schema}) == 0
