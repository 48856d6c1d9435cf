"""The `tenantcrm` command's contract: JSON on stdout, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import text

from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.provisioning import ProvisioningError
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import PASSWORD


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


def run_cli(env: dict[str, str], *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", *args],
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_args(name: str) -> tuple[str, ...]:
    """`tenants create` of a tenant whose admin's password is known."""
    return (
        "tenants",
        "create",
        name,
        "--name",
        "Crash",
        "--admin-email",
        "a@crash.example",
        "--admin-password",
        PASSWORD,
    )


def slug() -> str:
    return f"cli-{secrets.token_hex(3)}"


async def tenant_row(db, slug_: str):
    async with db.admin_engine.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM platform.tenants WHERE slug = :s"), {"s": slug_})
        ).first()


async def test_create_prints_one_json_object_and_the_admin_can_sign_in(cli_env, db, lifecycle, client):
    name = slug()
    result = run_cli(
        cli_env, "tenants", "create", name, "--name", "Acme 小贷", "--admin-email", "Boss@Acme.example"
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"slug", "schema", "admin_email", "admin_password"}
    assert created["slug"] == name and created["admin_email"] == "boss@acme.example"
    assert created["schema"].startswith("t_") and len(created["admin_password"]) >= 16

    login = await client.get(f"/t/{name}/login")
    assert login.status_code == 200
    response = await client.post(
        f"/t/{name}/login",
        data={
            "email": "boss@acme.example",
            "password": created["admin_password"],
            "_csrf_token": client.cookies["csrftoken"],
        },
        follow_redirects=False,
    )
    assert response.status_code == 303


async def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(cli_env, db, tenant_a):
    cases = [
        ("tenants", "create", "Bad Slug", "--name", "x", "--admin-email", "a@b.cc"),
        ("tenants", "create", "ok-slug-1", "--name", "x", "--admin-email", "not-an-email"),
        (
            "tenants",
            "create",
            "ok-slug-2",
            "--name",
            "x",
            "--admin-email",
            "a@b.cc",
            "--admin-password",
            "short",
        ),
        ("tenants", "create", tenant_a.slug, "--name", "x", "--admin-email", "a@b.cc"),
        ("tenants", "suspend", "no-such-tenant"),
        ("tenants", "resume", "no-such-tenant"),
        ("tenants", "delete", tenant_a.slug),
        ("tenants", "delete", "no-such-tenant", "--yes"),
        ("tenants", "migrate", "no-such-tenant"),
        ("tenants", "migrate"),
        ("tokens", "create", "--tenant", "no-such-tenant", "--email", "a@b.cc"),
        ("tokens", "create", "--tenant", tenant_a.slug, "--email", "nobody@example.com"),
    ]
    for args in cases:
        result = run_cli(cli_env, *args)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert result.stdout == "", args
    for never_created in ("ok-slug-1", "ok-slug-2", "bad slug"):
        assert await tenant_row(db, never_created) is None
    assert (await tenant_row(db, tenant_a.slug)).status == "active"


async def test_list_suspend_resume_round_trip(cli_env, fresh_tenant):
    assert run_cli(cli_env, "tenants", "suspend", fresh_tenant.slug).returncode == 0
    listed = json.loads(run_cli(cli_env, "tenants", "list", "--json").stdout)
    mine = next(t for t in listed if t["slug"] == fresh_tenant.slug)
    assert mine["status"] == "suspended" and mine["schema_version"] == migrations.head("tenant")
    assert run_cli(cli_env, "tenants", "resume", fresh_tenant.slug).returncode == 0
    listed = json.loads(run_cli(cli_env, "tenants", "list", "--json").stdout)
    assert next(t for t in listed if t["slug"] == fresh_tenant.slug)["status"] == "active"


async def test_token_is_printed_alone_on_the_last_line_and_stored_only_hashed(cli_env, db, tenant_a, client):
    result = run_cli(
        cli_env,
        "tokens",
        "create",
        "--tenant",
        tenant_a.slug,
        "--email",
        tenant_a.admin_email,
        "--name",
        "ci",
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("tcrm_") and " " not in token
    async with tenant_session(db, tenant_a.tenant) as session:
        stored = (await session.execute(text("SELECT token_hash::text FROM api_tokens"))).scalars().all()
    secret = token.split("_", 2)[2]
    assert stored and all(secret not in value for value in stored)
    response = await client.post(
        "/graphql", json={"query": "{ viewer { email } }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["data"]["viewer"]["email"] == tenant_a.admin_email


async def test_delete_drops_schema_role_and_registry_row(cli_env, db, fresh_tenant):
    schema = fresh_tenant.tenant.schema
    result = run_cli(cli_env, "tenants", "delete", fresh_tenant.slug, "--yes")
    assert result.returncode == 0, result.stderr
    async with db.admin_engine.connect() as conn:
        assert (
            await conn.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema})
            == 0
        )
        assert await conn.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :s"), {"s": schema}) == 0
    assert await tenant_row(db, fresh_tenant.slug) is None


@pytest.mark.parametrize("step", ["register", "schema", "migrate"])
async def test_a_create_killed_midway_is_completed_by_a_rerun(cli_env, db, step, client):
    name = slug()
    args = create_args(name)
    killed = run_cli(cli_env, *args, TENANTCRM_CRASH_AFTER=step)
    assert killed.returncode == -9  # SIGKILL: no cleanup ran
    row = await tenant_row(db, name)
    assert row is not None and row.status == "provisioning"
    assert (await client.get(f"/t/{name}/login")).status_code == 404  # half-built: unreachable

    rerun = run_cli(cli_env, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["schema"] == row.schema_name  # the same tenant, finished
    assert (await tenant_row(db, name)).status == "active"
    assert (await client.get(f"/t/{name}/login")).status_code == 200


async def test_migrate_all_isolates_a_failing_tenant_and_a_rerun_finishes(cli_env, db, lifecycle):
    from tests.conftest import make_tenant

    tenants = [await make_tenant(lifecycle, "mig") for _ in range(3)]
    broken = tenants[1]
    # Put all three back to an empty schema, then give one a table that blocks its migration.
    async with db.admin_engine.begin() as conn:
        for t in tenants:
            schema = t.tenant.schema
            # Dropping and recreating the schema empties it of every table, function and trigger.
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text(f'CREATE TABLE "{broken.tenant.schema}".customers (id int)'))

    result = run_cli(cli_env, "tenants", "migrate", "--all", "--json")
    assert result.returncode == 1
    outcomes = {o["slug"]: o for o in json.loads(result.stdout)}
    assert outcomes[tenants[0].slug]["status"] == "migrated"
    assert outcomes[tenants[2].slug]["status"] == "migrated"
    assert outcomes[broken.slug]["status"] == "failed"
    assert "customers" in outcomes[broken.slug]["error"]
    async with db.admin_engine.connect() as conn:
        # The failed tenant's migration rolled back whole: not even its first table is there.
        users = await conn.scalar(text("SELECT to_regclass(:t)"), {"t": f"{broken.tenant.schema}.users"})
        assert users is None

    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE "{broken.tenant.schema}".customers'))
    rerun = run_cli(cli_env, "tenants", "migrate", "--all", "--json")
    assert rerun.returncode == 0, rerun.stderr
    outcomes = {o["slug"]: o for o in json.loads(rerun.stdout)}
    assert outcomes[broken.slug]["status"] == "migrated"
    assert outcomes[tenants[0].slug]["status"] == "current"


async def test_lifecycle_refuses_to_resume_a_tenant_being_provisioned(lifecycle):
    name = slug()
    await lifecycle._register(name, "Half")
    with pytest.raises(ProvisioningError):
        await lifecycle.set_status(name, "active")


async def test_users_create_prints_the_generated_password_once(cli_env, tenant_a, client):
    email = f"cli-{secrets.token_hex(3)}@example.com"
    result = run_cli(
        cli_env, "users", "create", "--tenant", tenant_a.slug, "--email", email, "--role", "risk_officer"
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["email"] == email and created["role"] == "risk_officer" and len(created["password"]) >= 16
    given = run_cli(
        cli_env,
        "users",
        "create",
        "--tenant",
        tenant_a.slug,
        "--email",
        "x" + email,
        "--role",
        "viewer",
        "--password",
        PASSWORD,
    )
    assert json.loads(given.stdout) == {"email": "x" + email, "role": "viewer"}
    for bad in (
        ("--email", email, "--role", "viewer"),  # duplicate
        ("--email", "y" + email, "--role", "emperor"),  # unknown role
        ("--email", "not-an-email", "--role", "viewer"),
    ):
        refused = run_cli(cli_env, "users", "create", "--tenant", tenant_a.slug, *bad)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr


async def test_cli_user_and_token_creation_is_audited(cli_env, db, tenant_a):
    from tenantcrm.audit.service import list_events
    from tenantcrm.auth.service import find_user_by_email
    from tests.conftest import principal_of

    email = f"audited-{secrets.token_hex(3)}@example.com"
    assert (
        run_cli(
            cli_env, "users", "create", "--tenant", tenant_a.slug, "--email", email, "--role", "viewer"
        ).returncode
        == 0
    )
    assert (
        run_cli(
            cli_env, "tokens", "create", "--tenant", tenant_a.slug, "--email", email, "--name", "audited"
        ).returncode
        == 0
    )
    admin = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        user = await find_user_by_email(session, email)
        created = await list_events(session, admin, actor="cli", entity_type="user", entity_id=str(user.id))
        tokens = await list_events(session, admin, actor="cli", entity_type="api_token", entity_id="audited")
    assert [e.action for e in created.events] == ["create"] and created.events[0].changes["role"] == "viewer"
    assert tokens.events and tokens.events[0].changes["user"] == str(user.id)
