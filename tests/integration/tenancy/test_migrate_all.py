"""`tenants migrate --all --concurrency N`: worker processes, one outcome per tenant, failures isolated."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import text

from tenantcrm.tenancy import migrations
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
