"""GET /readyz: ready at head; not ready with a tenant behind (recounted every 30 s) or no database."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import text

from tenantcrm.database import Database
from tenantcrm.observability.readiness import BEHIND_REFRESH_NS
from tenantcrm.tenancy import migrations


def previous_tenant_revision() -> str:
    script = ScriptDirectory.from_config(migrations._config("tenant"))
    down = script.get_revision(migrations.head("tenant")).down_revision
    assert isinstance(down, str)
    return down


async def set_registry_version(db, tenant_id: str, version: str) -> None:
    async with db.admin_engine.begin() as conn:
        await conn.execute(
            text("UPDATE platform.tenants SET schema_version = :v WHERE id = :i"),
            {"v": version, "i": tenant_id},
        )


async def test_ready_when_the_database_answers_and_everything_is_at_head(ops_app, client):
    async with ops_app() as (_, ops_client):
        response = await ops_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_an_active_tenant_behind_makes_the_process_not_ready_until_recounted(ops_app, db, fresh_tenant):
    await set_registry_version(db, fresh_tenant.tenant.id, previous_tenant_revision())
    try:
        async with ops_app() as (app, client):
            now = [10**12]
            app.state.readiness.clock = lambda: now[0]
            behind = await client.get("/readyz")
            await set_registry_version(db, fresh_tenant.tenant.id, migrations.head("tenant"))
            cached = await client.get("/readyz")
            now[0] += BEHIND_REFRESH_NS
            recounted = await client.get("/readyz")
    finally:
        await set_registry_version(db, fresh_tenant.tenant.id, migrations.head("tenant"))
    assert behind.status_code == 503
    assert behind.json()["status"] == "not ready"
    assert "behind the newest tenant migration" in behind.json()["reason"]
    assert fresh_tenant.slug not in behind.text and fresh_tenant.tenant.id not in behind.text
    assert cached.status_code == 503  # the count is kept for 30 s: probes stay cheap
    assert recounted.status_code == 200


async def test_a_suspended_tenant_behind_does_not_hold_readiness(ops_app, db, lifecycle, fresh_tenant):
    await lifecycle.set_status(fresh_tenant.slug, "suspended")
    await set_registry_version(db, fresh_tenant.tenant.id, previous_tenant_revision())
    try:
        async with ops_app() as (_, client):
            response = await client.get("/readyz")
    finally:
        await set_registry_version(db, fresh_tenant.tenant.id, migrations.head("tenant"))
    assert response.status_code == 200


async def test_no_database_is_not_ready(settings, database_url):
    from dataclasses import replace

    import httpx

    from tenantcrm.app import create_app

    unreachable = "postgresql://nobody@127.0.0.1:9/nowhere"
    dead = Database.connect(replace(settings, app_database_url=unreachable), unreachable)
    try:
        app = create_app(settings, database_url, database=dead)
        app.state.db = dead
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
            healthz = await client.get("/healthz")
    finally:
        await dead.dispose()
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database unavailable")
    assert "nobody" not in response.text and "nowhere" not in response.text
    assert healthz.status_code == 200  # the process itself is alive


async def test_a_tenant_migrated_by_a_newer_release_is_not_behind(ops_app, db, fresh_tenant):
    await set_registry_version(db, fresh_tenant.tenant.id, "t9999_from_a_newer_release")
    try:
        async with ops_app() as (_, client):
            newer = await client.get("/readyz")
    finally:
        await set_registry_version(db, fresh_tenant.tenant.id, migrations.head("tenant"))
    assert newer.status_code == 200  # a rolling deploy must not take the older processes out
