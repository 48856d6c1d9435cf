"""Only an active tenant is reachable: suspended ones are refused, half-built ones do not exist."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.service import create_api_token, upsert_user
from tenantcrm.tenancy.tenant import schema_for
from tests.conftest import PASSWORD, api_token_for
from tests.isolation.helpers import SESSION_COOKIE, csrf_token, graphql, web_sign_in

VIEWER = "{ viewer { tenantSlug } }"
ENGLISH = {"Accept-Language": "en"}
SUSPENDED_HEADING = "<h1>Account suspended</h1>"


async def _web_session_count(db, schema: str) -> int:
    async with db.admin_engine.connect() as conn:
        return await conn.scalar(text(f'SELECT count(*) FROM "{schema}".web_sessions'))


async def _post_login(client, slug: str, email: str, password: str):
    return await client.post(
        f"/t/{slug}/login",
        data={
            "email": email,
            "password": password,
            "_csrf_token": await csrf_token(client),
            "next": f"/t/{slug}/customers",
        },
        headers=ENGLISH,
        follow_redirects=False,
    )


@pytest.fixture
async def suspended(db, client, lifecycle, fresh_tenant):
    """A tenant with an API token and a web session, both working, then suspended."""
    fx = fresh_tenant
    token = await api_token_for(db, fx.tenant, fx.admin_email)
    cookie = await web_sign_in(client, fx.slug, fx.admin_email, fx.password)
    # Controls: both work before the suspension.
    assert (await graphql(client, token, VIEWER)).json() == {"data": {"viewer": {"tenantSlug": fx.slug}}}
    assert (await client.get(f"/t/{fx.slug}/customers", follow_redirects=False)).status_code == 200

    assert (await lifecycle.set_status(fx.slug, "suspended")).status == "suspended"
    return fx, token, cookie


async def test_suspended_tenants_api_token_gets_403(client, suspended):
    _, token, _ = suspended
    response = await graphql(client, token, VIEWER)
    assert response.status_code == 403
    assert "data" not in response.json()


async def test_a_forged_token_for_a_suspended_tenant_learns_nothing_about_it(client, suspended):
    fx, _, _ = suspended
    forged = f"tcrm_{fx.tenant.id}_{secrets.token_urlsafe(32)}"
    response = await graphql(client, forged, VIEWER)
    assert response.status_code == 401  # the same as for an active tenant, not 403 "suspended"


async def test_suspended_tenants_sign_in_page_is_the_suspended_page(client, suspended):
    fx, _, _ = suspended
    response = await client.get(f"/t/{fx.slug}/login", headers=ENGLISH, follow_redirects=False)
    assert response.status_code == 403
    assert SUSPENDED_HEADING in response.text
    assert 'name="password"' not in response.text


async def test_suspended_tenant_cannot_be_signed_into(db, client, suspended):
    fx, _, _ = suspended
    client.cookies.delete(SESSION_COOKIE)
    sessions_before = await _web_session_count(db, fx.tenant.schema)

    response = await _post_login(client, fx.slug, fx.admin_email, fx.password)
    assert response.status_code == 403
    assert SUSPENDED_HEADING in response.text
    assert "location" not in response.headers
    assert SESSION_COOKIE not in response.cookies
    assert client.cookies.get(SESSION_COOKIE) is None
    assert await _web_session_count(db, fx.tenant.schema) == sessions_before


async def test_session_from_before_suspension_no_longer_opens_pages(client, suspended):
    fx, _, cookie = suspended
    assert client.cookies.get(SESSION_COOKIE) == cookie
    for path in ("customers", "customers/new"):
        response = await client.get(f"/t/{fx.slug}/{path}", headers=ENGLISH, follow_redirects=False)
        assert response.status_code == 403, path
        assert SUSPENDED_HEADING in response.text


async def test_resuming_a_suspended_tenant_restores_token_session_and_sign_in(client, lifecycle, suspended):
    fx, token, cookie = suspended
    assert (await lifecycle.set_status(fx.slug, "active")).status == "active"

    assert (await graphql(client, token, VIEWER)).json() == {"data": {"viewer": {"tenantSlug": fx.slug}}}
    assert client.cookies.get(SESSION_COOKIE) == cookie
    assert (await client.get(f"/t/{fx.slug}/customers", follow_redirects=False)).status_code == 200
    client.cookies.delete(SESSION_COOKIE)
    assert await web_sign_in(client, fx.slug, fx.admin_email, fx.password) != cookie


# --- a tenant whose provisioning has not finished ---


@pytest.fixture
async def half_built(request, db, lifecycle):
    """A tenant left at status `provisioning` after the given step, as a crashed create leaves it.

    After `migrated` it even has an admin user with a known password and an API token: all
    that is missing is the final activation.
    """
    stage = request.param
    slug = f"half-{secrets.token_hex(3)}"
    tenant_id, _claimed = await lifecycle._register(slug, "Half built")  # the pool is empty here
    schema = schema_for(tenant_id)
    email, token = f"admin@{slug}.example", None
    if stage in ("schema", "migrated"):
        await lifecycle._create_role_and_schema(schema)
    if stage == "migrated":
        await lifecycle._migrate_schema(tenant_id, schema)
        tenant = await lifecycle.get(slug)
        async with db.admin_engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT set_config('search_path', :s, true)"), {"s": schema})
            session = AsyncSession(bind=conn)
            user = await upsert_user(session, email=email, password=PASSWORD, role="admin")
            token = await create_api_token(session, tenant, user, "half-built")
    assert (await lifecycle.get(slug)).status == "provisioning"
    yield slug, email, token
    await lifecycle.delete(slug)


HALF_BUILT_STAGES = ["registered", "schema", "migrated"]


@pytest.mark.parametrize("half_built", HALF_BUILT_STAGES, indirect=True)
async def test_half_built_tenant_sign_in_page_is_404(client, half_built):
    slug, _, _ = half_built
    response = await client.get(f"/t/{slug}/login", follow_redirects=False)
    assert response.status_code == 404
    # The same page as for a slug that names no tenant at all.
    nobody_slug = f"nobody-{slug}"
    nobody = await client.get(f"/t/{nobody_slug}/login", follow_redirects=False)
    assert nobody.status_code == 404
    assert response.text.replace(slug, "SLUG") == nobody.text.replace(nobody_slug, "SLUG")


@pytest.mark.parametrize("half_built", HALF_BUILT_STAGES, indirect=True)
async def test_half_built_tenant_cannot_be_signed_into(client, half_built):
    slug, email, _ = half_built
    response = await _post_login(client, slug, email, PASSWORD)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert SESSION_COOKIE not in response.cookies
    assert client.cookies.get(SESSION_COOKIE) is None


@pytest.mark.parametrize("half_built", ["migrated"], indirect=True)
async def test_half_built_tenants_api_token_gets_401(client, half_built):
    _, _, token = half_built
    assert token is not None
    response = await graphql(client, token, VIEWER)
    assert response.status_code == 401
    assert "data" not in response.json()
