"""`tenantcrm retention run`: the --dry-run --json contract, a real run, --all past a broken
tenant, and one-line errors; no customer data in the output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select, text

from tenantcrm.customers.models import Customer
from tenantcrm.retention.models import RetentionRun
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant, principal_of
from tests.integration.retention.helpers import enable_all, fingerprint, seed_customer


@pytest.fixture
def cli_env(settings, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def seeded(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "retcli")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    prospect = await seed_customer(db, settings, fixture.tenant, admin)
    await enable_all(db, fixture.tenant, admin, action="delete", disabled=("interactions", "complaints"))
    return fixture.tenant, prospect


async def test_dry_run_json_prints_counts_and_changes_nothing_then_the_run_applies_them(cli_env, db, seeded):
    tenant, prospect = seeded
    before = await fingerprint(db, tenant)
    dry = await asyncio.to_thread(run_cli, cli_env, "retention", "run", tenant.slug, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["tenant"] == tenant.slug and report["dry_run"] is True
    assert report["counts"] == {
        "prospects": 1,
        "closed_customers": 0,
        "pii_access_log": 1,
        "sessions": 0,
        "audit_events": 0,
    }
    assert sorted(report["disabled"]) == ["complaints", "interactions"]
    assert await fingerprint(db, tenant) == before
    for value in prospect.values.values():
        assert value not in dry.stdout + dry.stderr

    done = await asyncio.to_thread(run_cli, cli_env, "retention", "run", tenant.slug, "--json")
    assert done.returncode == 0, done.stderr
    applied = json.loads(done.stdout)
    assert applied["counts"] == report["counts"] and applied["dry_run"] is False
    async with tenant_session(db, tenant) as session:
        assert await session.get(Customer, prospect.id) is None
        run = await session.scalar(select(RetentionRun))
    assert (run.trigger, run.actor, run.actor_id, str(run.id)) == (
        "cli",
        "system:retention",
        None,
        applied["run_id"],
    )

    text_run = await asyncio.to_thread(run_cli, cli_env, "retention", "run", tenant.slug, "--dry-run")
    assert text_run.returncode == 0
    assert text_run.stdout.strip() == (
        f"{tenant.slug}: prospects 0, closed_customers 0, pii_access_log 0, sessions 0, audit_events 0"
        " (dry run, nothing changed)"
    )


async def test_all_continues_past_a_broken_tenant_and_exits_1(cli_env, db, lifecycle, seeded):
    tenant, _ = seeded
    broken = (await make_tenant(lifecycle, "retbroken")).tenant
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE {broken.schema}.retention_policies"))
    result = await asyncio.to_thread(run_cli, cli_env, "retention", "run", "--all", "--dry-run", "--json")
    assert result.returncode == 1
    reports = {r["tenant"]: r for r in json.loads(result.stdout)}
    assert reports[tenant.slug]["status"] == "ok" and reports[tenant.slug]["counts"]["prospects"] == 1
    assert reports[broken.slug] == {"tenant": broken.slug, "status": "failed", "error": "ProgrammingError"}
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: retention failed for ") and broken.slug in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-tenant",), "error: unknown tenant 'no-such-tenant'"),
        ((), "error: give one tenant slug or --all"),
        (("x", "--all"), "error: give one tenant slug or --all"),
        (("x", "--as-of", "31/12/2026"), "error: --as-of must be a date (YYYY-MM-DD)"),
    ],
)
async def test_errors_are_one_line_on_stderr_with_a_nonzero_exit(cli_env, args, message):
    result = await asyncio.to_thread(run_cli, cli_env, "retention", "run", *args)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [message]
