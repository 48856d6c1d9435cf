"""Spare tenants (ADR 0014): made ahead at head, claimed by a create, invisible and inert until then."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets

import pytest
from sqlalchemy import text

from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.migrate_all import migrate_all
from tenantcrm.tenancy.provisioning import ProvisioningError
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.tenant import spare_slug
from tests.conftest import PASSWORD, principal_of
from tests.integration.console.helpers import console_sign_in, make_operator
from tests.integration.tenancy.test_cli import cli_env, create_args, run_cli  # noqa: F401 (a fixture)


async def spare_rows(db) -> list:
    async with db.admin_engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT id, slug, status, schema_name, schema_version FROM platform.tenants"
                " WHERE slug = 'spare-' || id ORDER BY created_at"
            )
        )
        return list(result)


@pytest.fixture
async def pool(db, lifecycle):
    """The lifecycle, with every spare this test left behind deleted afterwards (other tests' creates
    would otherwise claim them)."""
    yield lifecycle
    for row in await spare_rows(db):
        await lifecycle.delete(row.slug)


@pytest.fixture
def alembic_runs(monkeypatch):
    """How often a tenant schema went through Alembic in this process."""
    runs: list[str] = []
    upgrade = migrations.upgrade_tenant

    async def counted(connection, schema, *args, **kwargs):
        runs.append(schema)
        return await upgrade(connection, schema, *args, **kwargs)

    monkeypatch.setattr(migrations, "upgrade_tenant", counted)
    return runs


def new_slug() -> str:
    return f"pool-{secrets.token_hex(3)}"


async def create(lifecycle, slug: str):
    return await lifecycle.create(
        slug, name="Pool 小贷", admin_email=f"admin@{slug}.example", admin_password=PASSWORD
    )


async def test_top_up_makes_ready_spares_without_users_and_tops_up_only_what_is_missing(db, pool):
    first = await pool.top_up_spares(2)
    assert (first.ready, first.behind, first.made, first.busy) == (2, 0, 2, False)
    rows = await spare_rows(db)
    assert [r.status for r in rows] == ["spare", "spare"]
    head = migrations.head("tenant")
    async with db.admin_engine.connect() as conn:
        for row in rows:
            assert row.slug == spare_slug(row.id) and row.schema_name == f"t_{row.id}"
            assert row.schema_version == head
            assert await migrations.tenant_version(conn, row.schema_name) == head
            assert await conn.scalar(text(f'SELECT count(*) FROM "{row.schema_name}".users')) == 0
            assert await conn.scalar(
                text("SELECT count(*) FROM platform.tenant_keys WHERE tenant_id = :t"), {"t": row.id}
            )
    again = await pool.top_up_spares(2)
    assert (again.ready, again.made) == (2, 0)
    assert [r.id for r in await spare_rows(db)] == [r.id for r in rows]


async def test_create_claims_a_spare_at_head_without_running_alembic(db, pool, alembic_runs):
    await pool.top_up_spares(1)
    [spare] = await spare_rows(db)
    alembic_runs.clear()  # the top-up's own
    slug = new_slug()
    created = await create(pool, slug)
    assert created.schema == spare.schema_name  # the spare's id, schema, role and keys, kept
    assert alembic_runs == []
    tenant = await pool.get(slug)
    assert (tenant.id, tenant.status, tenant.name) == (spare.id, "active", "Pool 小贷")
    assert await principal_of(db, tenant, created.admin_email) is not None
    assert await spare_rows(db) == []
    assert (await find_tenant_by_slug(db, spare.slug)) is None
    await pool.delete(slug)


async def test_an_empty_pool_falls_back_to_the_full_path(db, pool, alembic_runs):
    assert await spare_rows(db) == []
    slug = new_slug()
    created = await create(pool, slug)
    assert alembic_runs == [created.schema]
    assert (await pool.get(slug)).status == "active"
    await pool.delete(slug)


async def test_two_concurrent_creates_claim_two_different_spares(db, pool, alembic_runs):
    await pool.top_up_spares(2)
    spares = {r.schema_name for r in await spare_rows(db)}
    alembic_runs.clear()
    slugs = [new_slug(), new_slug()]
    created = await asyncio.gather(*(create(pool, slug) for slug in slugs))
    assert {c.schema for c in created} == spares
    assert alembic_runs == []
    for slug in slugs:
        await pool.delete(slug)


async def test_a_spare_behind_head_is_never_claimed_and_migrate_all_brings_it_to_head(db, pool, alembic_runs):
    await pool.top_up_spares(1)
    [spare] = await spare_rows(db)
    tenant_migrator = migrations.migrator("tenant")
    async with db.admin_engine.begin() as conn:
        await conn.run_sync(tenant_migrator.downgrade, spare.schema_name, "-1")
        older = await migrations.tenant_version(conn, spare.schema_name)
        await conn.execute(
            text("UPDATE platform.tenants SET schema_version = :v WHERE id = :id"),
            {"v": older, "id": spare.id},
        )
    assert older != tenant_migrator.head
    assert (await pool.top_up_spares(0)).behind == 1
    alembic_runs.clear()

    slug = new_slug()
    created = await create(pool, slug)
    assert created.schema != spare.schema_name and alembic_runs == [created.schema]
    assert [r.status for r in await spare_rows(db)] == ["spare"]

    outcomes = {o.slug: o for o in await migrate_all(pool)}
    assert (outcomes[spare.slug].status, outcomes[spare.slug].to_version) == (
        "migrated",
        tenant_migrator.head,
    )
    pool_now = await pool.top_up_spares(0)
    assert (pool_now.ready, pool_now.behind) == (1, 0)
    await pool.delete(slug)


async def test_spares_are_refused_at_sign_in_and_left_out_of_lists(db, pool, client, settings):
    await pool.top_up_spares(1)
    [spare] = await spare_rows(db)
    assert (await client.get(f"/t/{spare.slug}/login")).status_code == 404
    assert (await find_tenant_by_slug(db, spare.slug)).active is False  # so no token of it is taken

    assert spare.slug not in {t["slug"] for t in await pool.list_tenants()}
    assert spare.slug in {t["slug"] for t in await pool.list_tenants(spares=True)}

    await console_sign_in(client, await make_operator(db, settings))
    listing = await client.get("/platform/")
    assert listing.status_code == 200
    assert spare.slug not in listing.text and spare.id not in listing.text
    shown = re.search(r'<span id="spares">([^<]*)</span>', listing.text)
    assert shown is not None and re.findall(r"\d+", shown.group(1)) == ["1"]  # a count, in either language
    assert (await client.get(f"/platform/tenants/{spare.slug}")).status_code == 404

    with pytest.raises(ProvisioningError, match="spare"):
        await pool.set_status(spare.slug, "suspended")


async def test_no_institution_can_take_a_spare_slug(db, pool):
    with pytest.raises(ProvisioningError, match="spare"):
        await create(pool, spare_slug(secrets.token_hex(8)))
    async with db.admin_engine.connect() as conn:  # the registry refuses it too, whatever the caller
        with pytest.raises(Exception, match="tenants_spare_slug"):
            tenant_id = secrets.token_hex(8)
            await conn.execute(
                text(
                    "INSERT INTO platform.tenants (id, slug, name, status, schema_name)"
                    " VALUES (:id, :slug, 'x', 'provisioning', 't_' || :id)"
                ),
                {"id": tenant_id, "slug": spare_slug(secrets.token_hex(8))},
            )


async def test_deleting_a_spare_drops_its_schema_role_and_row(db, pool):
    await pool.top_up_spares(1)
    [spare] = await spare_rows(db)
    await pool.delete(spare.slug)
    async with db.admin_engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": spare.schema_name}
            )
            == 0
        )
        assert (
            await conn.scalar(
                text("SELECT count(*) FROM pg_roles WHERE rolname = :s"), {"s": spare.schema_name}
            )
            == 0
        )
    assert await spare_rows(db) == []


async def test_the_cli_tops_up_and_a_killed_top_up_is_finished_by_the_next(db, pool, cli_env):  # noqa: F811
    killed = run_cli(cli_env, "tenants", "spares", "--keep", "1", TENANTCRM_CRASH_AFTER="spare-register")
    assert killed.returncode == -9
    [half] = await spare_rows(db)
    assert half.status == "provisioning"
    result = run_cli(cli_env, "tenants", "spares", "--keep", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"keep": 1, "ready": 1, "behind": 0, "made": 1, "busy": False}
    assert [(r.id, r.status) for r in await spare_rows(db)] == [(half.id, "spare")]
    bad = run_cli(cli_env, "tenants", "spares", "--keep", "-1")
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1


async def test_a_create_killed_after_claiming_a_spare_is_completed_by_a_rerun(db, pool, cli_env, client):  # noqa: F811
    await pool.top_up_spares(1)
    [spare] = await spare_rows(db)
    slug = new_slug()
    args = create_args(slug)
    killed = run_cli(cli_env, *args, TENANTCRM_CRASH_AFTER="register")
    assert killed.returncode == -9
    row = await pool.list_tenants()
    assert {(t["slug"], t["status"], t["schema"]) for t in row} >= {(slug, "provisioning", spare.schema_name)}
    assert (await client.get(f"/t/{slug}/login")).status_code == 404

    rerun = run_cli(cli_env, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["schema"] == spare.schema_name
    assert (await pool.get(slug)).status == "active"
    assert (await client.get(f"/t/{slug}/login")).status_code == 200
    await pool.delete(slug)


async def test_the_schedule_tops_up_to_the_setting_and_does_nothing_at_zero(db, pool, settings):
    from tenantcrm.jobs.worker import schedules
    from tenantcrm.tenancy.tasks import SCHEDULE, top_up_spares

    assert schedules()[SCHEDULE][1] is top_up_spares
    # The task gets the settings of the process that runs the scheduler.
    await top_up_spares(db, dataclasses.replace(settings, spare_tenants=0))
    assert await spare_rows(db) == []
    await top_up_spares(db, dataclasses.replace(settings, spare_tenants=2))
    assert [r.status for r in await spare_rows(db)] == ["spare", "spare"]
