"""A tenant behind the newest tenant migration is refused (503, Retry-After), never served wrong."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import text

from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.maintenance import is_behind
from tests.conftest import api_token_for, web_sign_in

MAINTENANCE_TEXT = ("Upgrade in progress", "系统升级中")


def previous_revision() -> str:
    script = ScriptDirectory(str(migrations.MIGRATIONS_DIR / "tenant"))
    down = script.get_revision(migrations.head("tenant")).down_revision
    assert isinstance(down, str)
    return down


async def _record_version(db, tenant, version: str | None) -> None:
    async with db.admin_engine.begin() as conn:
        await conn.execute(
            text("UPDATE platform.tenants SET schema_version = :v WHERE id = :i"),
            {"v": version, "i": tenant.id},
        )


def test_only_known_older_revisions_and_none_count_as_behind():
    assert is_behind(previous_revision()) and is_behind(None)
    assert not is_behind(migrations.head("tenant"))
    assert not is_behind("t9999_from_a_newer_release")


async def test_pages_sign_in_and_graphql_are_refused_while_behind_and_served_when_current(
    db, client, fresh_tenant
):
    slug, tenant = fresh_tenant.slug, fresh_tenant.tenant
    assert (await web_sign_in(client, slug, fresh_tenant.admin_email)).status_code == 303
    token = await api_token_for(db, tenant, fresh_tenant.admin_email)
    query = {"query": "{ viewer { email } }"}
    bearer = {"Authorization": f"Bearer {token}"}

    await _record_version(db, tenant, previous_revision())
    page = await client.get(f"/t/{slug}/customers")
    assert page.status_code == 503 and page.headers["retry-after"] == "60"
    assert any(words in page.text for words in MAINTENANCE_TEXT)
    assert fresh_tenant.admin_email not in page.text  # refused before the session was read
    partial = await client.get(f"/t/{slug}/customers", headers={"HX-Request": "true"})
    assert partial.status_code == 503 and partial.headers["hx-refresh"] == "true"
    login = await client.get(f"/t/{slug}/login")
    assert login.status_code == 503 and any(words in login.text for words in MAINTENANCE_TEXT)
    api = await client.post("/graphql", json=query, headers=bearer)
    assert api.status_code == 503 and api.headers["retry-after"] == "60"
    body = api.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "TENANT_MAINTENANCE"

    await _record_version(db, tenant, "t9999_from_a_newer_release")  # newer code migrated it first
    assert (await client.get(f"/t/{slug}/customers")).status_code == 200

    await _record_version(db, tenant, migrations.head("tenant"))
    assert (await client.get(f"/t/{slug}/customers")).status_code == 200
    served = await client.post("/graphql", json=query, headers=bearer)
    assert served.status_code == 200 and served.json()["data"]["viewer"]["email"] == fresh_tenant.admin_email
