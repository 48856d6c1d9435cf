"""Web sign-in: argon2id passwords, server-side sessions, cookies, CSRF and throttling."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import httpx
import pytest
from sqlalchemy import select, text, update

from tenantcrm.auth import throttle
from tenantcrm.auth.models import User, WebSession
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import PASSWORD, add_user
from tests.conftest import web_sign_in as sign_in


async def test_health_answers_json(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_password_is_stored_as_argon2id(db, tenant_a):
    async with tenant_session(db, tenant_a.tenant) as session:
        user = await session.scalar(select(User).where(User.email == tenant_a.admin_email))
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_sign_in_sets_an_http_only_lax_cookie_and_opens_the_app(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    response = await sign_in(client, tenant_a.slug, email)
    assert response.status_code == 303
    assert response.headers["location"] == f"/t/{tenant_a.slug}/customers"
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("tcrm_session=")
    )
    attributes = cookie.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # plain HTTP in this test: a Secure cookie would be dropped
    assert (await client.get(f"/t/{tenant_a.slug}/customers")).status_code == 200


async def test_secure_settings_use_a_host_prefixed_secure_cookie(settings, database_url, db, tenant_a):
    from tenantcrm.app import create_app

    secure = create_app(dataclasses.replace(settings, secure_cookies=True), database_url, database=db)
    secure.state.db = db
    email = await add_user(db, tenant_a.tenant, "viewer")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=secure), base_url="https://testserver"
    ) as client:
        await client.get(f"/t/{tenant_a.slug}/login")
        response = await client.post(
            f"/t/{tenant_a.slug}/login",
            data={"email": email, "password": PASSWORD, "_csrf_token": client.cookies["__Host-csrftoken"]},
            follow_redirects=False,
        )
    assert response.status_code == 303
    cookie = next(
        v
        for k, v in response.headers.multi_items()
        if k == "set-cookie" and v.startswith("__Host-tcrm_session=")
    )
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()


async def test_wrong_password_and_unknown_account_look_the_same(client, tenant_a):
    wrong = await sign_in(client, tenant_a.slug, tenant_a.admin_email, "not the password")
    unknown = await sign_in(client, tenant_a.slug, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "tcrm_session" not in wrong.headers.get("set-cookie", "")
    # Same page but for the echoed e-mail: nothing tells whether the account exists.
    assert wrong.text.replace(tenant_a.admin_email, "E") == unknown.text.replace("nobody@example.com", "E")


async def test_sign_in_rotates_the_session_and_ends_the_previous_one(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await sign_in(client, tenant_a.slug, email)
    first = client.cookies["tcrm_session"]
    await sign_in(client, tenant_a.slug, email)
    second = client.cookies["tcrm_session"]
    assert first != second
    client.cookies.set("tcrm_session", first)
    response = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert response.status_code == 303 and "/login" in response.headers["location"]


async def test_sign_out_ends_the_session_on_the_server(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await sign_in(client, tenant_a.slug, email)
    cookie = client.cookies["tcrm_session"]
    response = await client.post(
        f"/t/{tenant_a.slug}/logout",
        data={"_csrf_token": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    client.cookies.set("tcrm_session", cookie)  # replaying the old cookie must not work
    replay = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert replay.status_code == 303 and "/login" in replay.headers["location"]


async def test_disabled_user_loses_its_live_session_and_cannot_sign_in(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await sign_in(client, tenant_a.slug, email)
    async with tenant_session(db, tenant_a.tenant) as session:
        await session.execute(update(User).where(User.email == email).values(status="disabled"))
    response = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert response.status_code == 303
    assert (await sign_in(client, tenant_a.slug, email)).status_code == 401


async def test_forms_without_csrf_token_are_refused(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    await client.get(f"/t/{tenant_a.slug}/login")
    response = await client.post(
        f"/t/{tenant_a.slug}/login", data={"email": email, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    await sign_in(client, tenant_a.slug, email)
    name = f"csrf-{uuid.uuid4().hex[:8]}"
    refused = await client.post(
        f"/t/{tenant_a.slug}/customers/new", data={"kind": "individual", "name": name}, follow_redirects=False
    )
    assert refused.status_code == 403
    # htmx sends the token as a header instead of a form field.
    accepted = await client.post(
        f"/t/{tenant_a.slug}/customers/new",
        data={"kind": "individual", "name": name},
        headers={"x-csrftoken": client.cookies["csrftoken"]},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    async with tenant_session(db, tenant_a.tenant) as session:
        count = await session.scalar(text("SELECT count(*) FROM customers WHERE name = :n"), {"n": name})
    assert count == 1  # the refused post wrote nothing


async def test_failures_on_one_account_block_it_even_with_the_right_password(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    for _ in range(throttle.ACCOUNT_LIMIT):
        assert (await sign_in(client, tenant_a.slug, email, "wrong password!")).status_code == 401
    blocked = await sign_in(client, tenant_a.slug, email)
    assert blocked.status_code == 429
    other = await add_user(db, tenant_a.tenant, "viewer")
    assert (await sign_in(client, tenant_a.slug, other)).status_code == 303  # others unaffected


async def test_attempts_from_one_address_block_that_address(db):
    address = f"203.0.113.{uuid.uuid4().int % 250}"
    key = throttle.address_key(address)
    await throttle.clear(db, key)
    limits = {key: throttle.ADDRESS_LIMIT}
    for _ in range(throttle.ADDRESS_LIMIT):
        assert await throttle.reserve_attempt(db, limits)
    assert not await throttle.is_blocked(db, key)
    assert not await throttle.reserve_attempt(db, limits)
    assert await throttle.is_blocked(db, key)
    await throttle.clear(db, key)


def test_ipv6_addresses_are_throttled_per_64_block():
    assert throttle.address_key("2001:db8:1:2::1") == throttle.address_key("2001:db8:1:2:ffff::9")
    assert throttle.address_key("2001:db8:1:2::1") != throttle.address_key("2001:db8:1:3::1")
    assert throttle.address_key("192.0.2.1") != throttle.address_key("192.0.2.2")


async def test_parallel_attempts_cannot_slip_past_the_account_limit(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await client.get(f"/t/{tenant_a.slug}/login")
    form = {"email": email, "password": "wrong password!", "_csrf_token": client.cookies["csrftoken"]}
    responses = await asyncio.gather(
        *(client.post(f"/t/{tenant_a.slug}/login", data=form, follow_redirects=False) for _ in range(20))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(401) == throttle.ACCOUNT_LIMIT  # only these reached the password check
    assert statuses.count(429) == 20 - throttle.ACCOUNT_LIMIT


async def test_a_successful_sign_in_gives_the_address_its_attempt_back(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    address = client._transport.client[0]  # the address this client's requests come from
    key = throttle.address_key(address)
    await throttle.clear(db, key)
    for _ in range(3):
        assert (await sign_in(client, tenant_a.slug, email)).status_code == 303
    async with db.admin_engine.connect() as conn:
        failures = await conn.scalar(
            text("SELECT failures FROM platform.login_throttle WHERE key = :k"), {"k": key}
        )
    assert failures == 0


async def test_an_oversized_password_is_refused_without_hashing(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    assert (await sign_in(client, tenant_a.slug, email, "x" * 100_000)).status_code == 401


async def test_sign_in_page_of_unknown_tenant_is_not_found(client):
    assert (await client.get("/t/no-such-bank/login")).status_code == 404
    assert (await client.get("/t/NOT_A_SLUG/login")).status_code == 404


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/t/other-tenant/customers"])
async def test_next_parameter_cannot_redirect_elsewhere(client, db, tenant_a, target):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await client.get(f"/t/{tenant_a.slug}/login")
    response = await client.post(
        f"/t/{tenant_a.slug}/login",
        data={
            "email": email,
            "password": PASSWORD,
            "_csrf_token": client.cookies["csrftoken"],
            "next": target,
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == f"/t/{tenant_a.slug}/customers"


async def test_session_rows_hold_only_a_hash_of_the_cookie(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await sign_in(client, tenant_a.slug, email)
    secret = client.cookies["tcrm_session"].split(".", 1)[1]
    async with tenant_session(db, tenant_a.tenant) as session:
        hashes = (await session.scalars(select(WebSession.token_hash))).all()
    assert hashes and all(secret.encode() not in h for h in hashes)


async def test_csrf_applies_to_a_tenant_whose_slug_contains_graphql(client, lifecycle):
    from tests.conftest import make_tenant

    tenant = await make_tenant(lifecycle, "graphql")
    await client.get(f"/t/{tenant.slug}/login")
    response = await client.post(
        f"/t/{tenant.slug}/login",
        data={"email": tenant.admin_email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403


async def test_security_headers_are_on_redirects_errors_and_api_answers(client, tenant_a, token_a):
    redirect = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    missing = await client.get("/t/no-such-bank/login")
    api = await client.post(
        "/graphql", json={"query": "{ viewer { email } }"}, headers={"Authorization": f"Bearer {token_a}"}
    )
    refused = await client.post("/graphql", json={"query": "{ viewer { email } }"})
    for response in (redirect, missing, api, refused):
        assert response.headers["x-frame-options"] == "DENY", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
    assert api.headers["cache-control"] == "no-store"
