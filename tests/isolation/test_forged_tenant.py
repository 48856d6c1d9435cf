"""The tenant comes from the principal: forged slugs, headers, tokens and cookies change nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tenantcrm.auth.service import split_api_token
from tenantcrm.tenancy.session import tenant_session
from tests.isolation.helpers import (
    SESSION_COOKIE,
    count_named,
    create_customer,
    csrf_token,
    graphql,
    unique,
    web_sign_in,
)

VIEWER_AND_CUSTOMERS = """
query ($search: String!) {
  viewer { tenantSlug email }
  customers(first: 10, filter: {search: $search}) { totalCount edges { node { name } } }
}
"""


# Ways a request might try to name a tenant other than its principal's; `b` is tenant b's fixture.
FORGERIES = {
    "x-tenant": lambda b: {"X-Tenant": b.slug},
    "x-tenant-id": lambda b: {"X-Tenant-Id": b.tenant.id},
    "x-tenant-slug": lambda b: {"X-Tenant-Slug": b.slug},
    "x-tenant-schema": lambda b: {"X-Tenant-Schema": b.tenant.schema},
    "host-subdomain": lambda b: {"Host": f"{b.slug}.testserver"},
    "host-slug": lambda b: {"Host": b.slug},
    "x-forwarded-host": lambda b: {"X-Forwarded-Host": f"{b.slug}.example.com"},
    "forwarded": lambda b: {"Forwarded": f"host={b.slug}.example.com"},
    "all-at-once": lambda b: {"X-Tenant": b.slug, "X-Tenant-Id": b.tenant.id, "Host": f"{b.slug}.testserver"},
}


@pytest.fixture
async def markers(db, tenant_a, tenant_b):
    """One customer in each tenant under a shared prefix, created just now (first on the list)."""
    prefix = unique("marker")
    names = {"a": f"{prefix}-alpha", "b": f"{prefix}-beta"}
    await create_customer(db, tenant_a, names["a"])
    await create_customer(db, tenant_b, names["b"])
    return {"prefix": prefix, **names}


@pytest.fixture
async def signed_in_a(client, tenant_a):
    cookie = await web_sign_in(client, tenant_a.slug, tenant_a.admin_email, tenant_a.password)
    return client, cookie


# --- pages ---


async def test_signed_in_tenant_a_asking_for_tenant_b_slug_gets_404(signed_in_a, tenant_a, tenant_b, markers):
    client, _ = signed_in_a
    own = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert own.status_code == 200
    assert markers["a"] in own.text  # control: the list does show the marker of one's own tenant

    for path in ("customers", "customers/new"):
        response = await client.get(f"/t/{tenant_b.slug}/{path}", follow_redirects=False)
        assert response.status_code == 404, path
        assert "location" not in response.headers
        assert markers["b"] not in response.text
        assert markers["a"] not in response.text

    # The same 404 as a slug that names no tenant at all.
    other = await client.get(f"/t/{tenant_b.slug}/customers", follow_redirects=False)
    nobody_slug = f"nobody-{tenant_b.slug}"
    nobody = await client.get(f"/t/{nobody_slug}/customers", follow_redirects=False)
    assert nobody.status_code == 404
    assert other.text.replace(tenant_b.slug, "SLUG") == nobody.text.replace(nobody_slug, "SLUG")


async def test_signed_in_tenant_a_cannot_create_in_tenant_b_through_its_slug(
    db, signed_in_a, tenant_a, tenant_b
):
    client, _ = signed_in_a
    name = unique("via-b-slug")
    form = {"_csrf_token": await csrf_token(client), "kind": "individual", "name": name}
    response = await client.post(f"/t/{tenant_b.slug}/customers/new", data=form, follow_redirects=False)
    assert response.status_code == 404
    for fixture in (tenant_a, tenant_b):
        async with tenant_session(db, fixture.tenant) as session:
            assert await count_named(session, name) == 0


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_tenant_headers_do_not_change_the_tenant_of_pages(
    signed_in_a, tenant_a, tenant_b, markers, forgery
):
    client, _ = signed_in_a
    headers = FORGERIES[forgery](tenant_b)
    response = await client.get(f"/t/{tenant_a.slug}/customers", headers=headers, follow_redirects=False)
    assert response.status_code == 200, headers
    assert markers["a"] in response.text
    assert markers["b"] not in response.text


async def test_forged_tenant_form_fields_do_not_change_where_a_customer_is_created(
    db, signed_in_a, tenant_a, tenant_b
):
    client, _ = signed_in_a
    name = unique("forged-fields")
    form = {
        "_csrf_token": await csrf_token(client),
        "kind": "individual",
        "name": name,
        "tenant": tenant_b.slug,
        "tenant_id": tenant_b.tenant.id,
        "slug": tenant_b.slug,
        "schema": tenant_b.tenant.schema,
    }
    response = await client.post(
        f"/t/{tenant_a.slug}/customers/new",
        data=form,
        headers={"X-Tenant": tenant_b.slug, "X-Tenant-Id": tenant_b.tenant.id},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/t/{tenant_a.slug}/customers/")
    async with tenant_session(db, tenant_a.tenant) as session:
        assert await count_named(session, name) == 1
    async with tenant_session(db, tenant_b.tenant) as session:
        assert await count_named(session, name) == 0


async def test_session_cookie_with_swapped_tenant_id_opens_neither_tenant(
    client, signed_in_a, tenant_a, tenant_b, markers
):
    _, cookie = signed_in_a
    secret = cookie.partition(".")[2]
    client.cookies.set(SESSION_COOKIE, f"{tenant_b.tenant.id}.{secret}")

    # Tenant b's own pages: b has no such session, so it is sent to b's sign-in, not shown data.
    in_b = await client.get(f"/t/{tenant_b.slug}/customers", follow_redirects=False)
    assert in_b.status_code == 303
    assert in_b.headers["location"].startswith(f"/t/{tenant_b.slug}/login")
    assert markers["b"] not in in_b.text
    # Tenant a's pages: the cookie names another tenant than the URL, so a 404.
    in_a = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert in_a.status_code == 404
    assert markers["a"] not in in_a.text

    # Control: the untouched cookie does open a's pages.
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)).status_code == 200


# --- GraphQL ---


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_tenant_headers_do_not_change_the_tenant_over_graphql(
    client, token_a, tenant_a, tenant_b, markers, forgery
):
    headers = FORGERIES[forgery](tenant_b)
    response = await graphql(client, token_a, VIEWER_AND_CUSTOMERS, {"search": markers["prefix"]}, headers)
    assert response.status_code == 200, headers
    data = response.json()["data"]
    assert data["viewer"] == {"tenantSlug": tenant_a.slug, "email": tenant_a.admin_email}
    assert data["customers"]["totalCount"] == 1
    assert [e["node"]["name"] for e in data["customers"]["edges"]] == [markers["a"]]


async def test_api_token_with_swapped_tenant_id_is_401(client, token_a, token_b, tenant_a, tenant_b):
    parts = split_api_token(token_a)
    assert parts is not None and parts[0] == tenant_a.tenant.id
    swapped = f"tcrm_{tenant_b.tenant.id}_{parts[1]}"
    assert split_api_token(swapped) == (tenant_b.tenant.id, parts[1])  # well-formed, just b's id

    query = "{ viewer { tenantSlug } }"
    assert (await graphql(client, token_a, query)).json() == {
        "data": {"viewer": {"tenantSlug": tenant_a.slug}}
    }
    response = await graphql(client, swapped, query)
    assert response.status_code == 401
    assert "data" not in response.json()
    assert response.headers.get("www-authenticate") == "Bearer"

    # The same 401 as a token that names no tenant at all.
    unknown = await graphql(client, f"tcrm_{'0' * 16}_{parts[1]}", query)
    assert unknown.status_code == 401
    assert unknown.json() == response.json()

    # And b's real token still says b: the swap is refused, not b made unusable.
    assert (await graphql(client, token_b, query)).json() == {
        "data": {"viewer": {"tenantSlug": tenant_b.slug}}
    }


async def test_api_token_with_swapped_tenant_id_does_not_touch_the_other_tenant(
    db, client, token_a, tenant_b
):
    parts = split_api_token(token_a)
    swapped = f"tcrm_{tenant_b.tenant.id}_{parts[1]}"
    name = unique("via-swapped-token")
    mutation = "mutation ($n: String!) { createCustomer(input: {kind: INDIVIDUAL, name: $n}) { __typename } }"
    response = await graphql(client, swapped, mutation, {"n": name})
    assert response.status_code == 401
    async with db.admin_engine.connect() as conn:
        found = await conn.scalar(
            text(f'SELECT count(*) FROM "{tenant_b.tenant.schema}".customers WHERE name = :n'), {"n": name}
        )
    assert found == 0
