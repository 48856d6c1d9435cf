"""Rate limits per API token, signed-in user and tenant (429 with Retry-After), and body size (413)."""

from __future__ import annotations

from markupsafe import escape

from tenantcrm.settings import REPO_ROOT
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, api_token_for, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
QUERY = {"query": "{ viewer { email } }"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def retry_after(response) -> int:
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    return seconds


async def test_a_signed_in_user_past_the_limit_gets_a_translated_429(ops_app, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    other = await add_user(db, tenant_a.tenant, "viewer")
    async with ops_app(rate_limit_user=3) as (_, client):
        await web_sign_in(client, tenant_a.slug, email)
        statuses = [(await client.get(f"/t/{tenant_a.slug}/customers")).status_code for _ in range(3)]
        refused = await client.get(f"/t/{tenant_a.slug}/customers", headers={"Accept-Language": "zh-CN"})
        client.cookies.clear()
        await web_sign_in(client, tenant_a.slug, other)
        someone_else = await client.get(f"/t/{tenant_a.slug}/customers")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    seconds = retry_after(refused)
    assert seconds == 20  # a minute's allowance of 3: one request back every 20 s
    assert str(escape(ZH("Too many requests"))) in refused.text
    assert f"{seconds}" in refused.text
    assert someone_else.status_code == 200  # the bucket is the user's, not the page's


async def test_an_api_token_past_the_limit_gets_a_graphql_shaped_429(ops_app, db, tenant_a):
    token = await api_token_for(db, tenant_a.tenant, tenant_a.admin_email)
    second = await api_token_for(db, tenant_a.tenant, tenant_a.admin_email)
    async with ops_app(rate_limit_token=2) as (_, client):
        answers = [await client.post("/graphql", json=QUERY, headers=bearer(token)) for _ in range(3)]
        other_token = await client.post("/graphql", json=QUERY, headers=bearer(second))
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert retry_after(refused) == 30
    body = refused.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 30}
    assert answers[0].json()["data"]["viewer"]["email"] == tenant_a.admin_email
    assert other_token.status_code == 200


async def test_a_tenant_past_its_limit_refuses_all_its_users_but_not_other_tenants(
    ops_app, db, tenant_a, tenant_b
):
    first = await add_user(db, tenant_a.tenant, "viewer")
    second = await add_user(db, tenant_a.tenant, "viewer")
    token_b = await api_token_for(db, tenant_b.tenant, tenant_b.admin_email)
    async with ops_app(rate_limit_tenant=3) as (_, client):
        await web_sign_in(client, tenant_a.slug, first)
        mine = [(await client.get(f"/t/{tenant_a.slug}/customers")).status_code for _ in range(2)]
        client.cookies.clear()
        await web_sign_in(client, tenant_a.slug, second)
        theirs = [(await client.get(f"/t/{tenant_a.slug}/customers")).status_code for _ in range(2)]
        elsewhere = await client.post("/graphql", json=QUERY, headers=bearer(token_b))
        refused = await client.get(f"/t/{tenant_a.slug}/customers")
    assert mine == [200, 200] and theirs == [200, 429]
    assert retry_after(refused) == 20
    assert elsewhere.status_code == 200


async def test_unauthenticated_requests_spend_no_tenant_allowance(ops_app, tenant_a):
    async with ops_app(rate_limit_tenant=1) as (_, client):
        client.cookies.set("tcrm_session", f"{tenant_a.tenant.id}.{'x' * 40}")
        for _ in range(3):
            response = await client.get(f"/t/{tenant_a.slug}/customers")
            assert response.status_code == 303  # to the sign-in page, not 429
        client.cookies.clear()
        await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)
        signed_in = await client.get(f"/t/{tenant_a.slug}/customers")
    assert signed_in.status_code == 200


async def test_bodies_over_the_limit_get_413_except_the_import_upload(ops_app, db, tenant_a):
    token = await api_token_for(db, tenant_a.tenant, tenant_a.admin_email)
    big_query = {"query": "{ viewer { email } }" + " " * 5000}
    async with ops_app(max_body_bytes=2000) as (_, client):
        graphql = await client.post("/graphql", json=big_query, headers=bearer(token))
        small = await client.post("/graphql", json=QUERY, headers=bearer(token))
        await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)
        csrf = client.cookies["csrftoken"]
        form = await client.post(
            f"/t/{tenant_a.slug}/customers/new",
            data={"_csrf_token": csrf, "kind": "individual", "name": "大" * 3000},
            headers={"Accept-Language": "zh-CN"},
        )
        upload = await client.post(
            f"/t/{tenant_a.slug}/imports",
            data={"_csrf_token": csrf},
            files={"file": ("customers.csv", b"name\n" + b"x," * 3000, "text/csv")},
        )
    assert graphql.status_code == 413
    assert graphql.json()["errors"][0]["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "limitBytes": 2000}
    assert small.status_code == 200
    assert form.status_code == 413 and str(escape(ZH("Too much data sent"))) in form.text
    assert upload.status_code != 413
