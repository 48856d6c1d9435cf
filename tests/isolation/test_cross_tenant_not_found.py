"""Another tenant's object looks exactly like a missing one, over GraphQL and on pages."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from tests.isolation.helpers import (
    create_customer,
    csrf_token,
    customer_name,
    graphql,
    unique,
    web_sign_in,
)

CUSTOMER = "query ($id: ID!) { customer(id: $id) { id name } }"
UPDATE = """
mutation ($id: ID!, $name: String!) {
  updateCustomer(id: $id, input: {name: $name}) {
    __typename
    ... on Customer { id name }
    ... on NotFoundError { message id }
  }
}
"""
PLACEHOLDER = "00000000-0000-4000-8000-00000000feed"


@pytest.fixture
async def customers(db, tenant_a, tenant_b):
    """Tenant a's own customer, tenant b's customer, and an id nobody has."""
    own_name, theirs_name = unique("a-own"), unique("b-secret")
    own = await create_customer(db, tenant_a, own_name)
    theirs = await create_customer(db, tenant_b, theirs_name)
    return {
        "own": (str(own), own_name),
        "theirs": (str(theirs), theirs_name),
        "random": str(uuid.uuid4()),
    }


def _masked(body: str, customer_id: str) -> str:
    return body.replace(customer_id, PLACEHOLDER)


# --- GraphQL ---


async def test_other_tenants_customer_is_null_over_graphql_like_a_random_id(
    client, token_a, token_b, customers
):
    theirs_id, theirs_name = customers["theirs"]
    own_id, own_name = customers["own"]

    # Controls: the query finds a's own customer, and b's customer is real (b's token finds it).
    own = await graphql(client, token_a, CUSTOMER, {"id": own_id})
    assert own.status_code == 200
    assert own.json() == {"data": {"customer": {"id": own_id, "name": own_name}}}
    in_b = await graphql(client, token_b, CUSTOMER, {"id": theirs_id})
    assert in_b.json() == {"data": {"customer": {"id": theirs_id, "name": theirs_name}}}

    other = await graphql(client, token_a, CUSTOMER, {"id": theirs_id})
    random = await graphql(client, token_a, CUSTOMER, {"id": customers["random"]})
    assert other.status_code == random.status_code == 200
    assert other.json() == random.json() == {"data": {"customer": None}}
    assert theirs_name not in other.text


async def test_updating_other_tenants_customer_over_graphql_is_not_found_like_a_random_id(
    db, client, token_a, tenant_b, customers
):
    theirs_id, theirs_name = customers["theirs"]
    random_id = customers["random"]
    new_name = unique("hijacked")

    other = await graphql(client, token_a, UPDATE, {"id": theirs_id, "name": new_name})
    random = await graphql(client, token_a, UPDATE, {"id": random_id, "name": new_name})
    assert other.status_code == random.status_code == 200
    assert other.json() == {
        "data": {
            "updateCustomer": {
                "__typename": "NotFoundError",
                "message": "customer not found",
                "id": theirs_id,
            }
        }
    }
    assert _masked(other.text, theirs_id) == _masked(random.text, random_id)
    assert await customer_name(db, tenant_b, uuid.UUID(theirs_id)) == theirs_name


async def test_updating_own_customer_over_graphql_succeeds(db, client, token_a, tenant_a, customers):
    # Control of the not-found above: the same mutation does change a's own customer.
    own_id, _ = customers["own"]
    new_name = unique("renamed")
    response = await graphql(client, token_a, UPDATE, {"id": own_id, "name": new_name})
    assert response.json() == {
        "data": {"updateCustomer": {"__typename": "Customer", "id": own_id, "name": new_name}}
    }
    assert await customer_name(db, tenant_a, uuid.UUID(own_id)) == new_name


def _cursor(customer_id: str) -> str:
    """A cursor as the API issues it for the default ordering: it names only a row id."""
    payload = json.dumps(["created_at", customer_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


PAGE_AFTER = """
query ($after: String!) {
  customers(first: 100, after: $after) {
    edges { node { id name } }
    pageInfo { hasNextPage hasPreviousPage }
  }
}
"""


async def test_cursor_naming_other_tenants_customer_pages_like_a_random_id(
    db, client, token_a, tenant_a, customers
):
    _, own_name = customers["own"]
    theirs_id, theirs_name = customers["theirs"]
    other = await graphql(client, token_a, PAGE_AFTER, {"after": _cursor(theirs_id)})
    random = await graphql(client, token_a, PAGE_AFTER, {"after": _cursor(customers["random"])})
    assert other.status_code == random.status_code == 200
    assert other.json() == random.json()
    assert "errors" not in other.json()
    assert theirs_name not in other.text

    # Control: the cursor format is right: after a newer own customer comes the older one.
    newer = await create_customer(db, tenant_a, unique("a-newer"))
    own = await graphql(client, token_a, PAGE_AFTER, {"after": _cursor(str(newer))})
    names = [e["node"]["name"] for e in own.json()["data"]["customers"]["edges"]]
    assert names[0] == own_name


# --- pages ---


@pytest.fixture
async def signed_in_a(client, tenant_a):
    await web_sign_in(client, tenant_a.slug, tenant_a.admin_email, tenant_a.password)
    return client


@pytest.mark.parametrize("suffix", ["", "/edit"], ids=["detail", "edit-form"])
async def test_other_tenants_customer_page_is_404_like_a_random_id(signed_in_a, tenant_a, customers, suffix):
    client = signed_in_a
    base = f"/t/{tenant_a.slug}/customers"
    theirs_id, theirs_name = customers["theirs"]
    own_id, own_name = customers["own"]
    random_id = customers["random"]

    own = await client.get(f"{base}/{own_id}{suffix}", follow_redirects=False)
    assert own.status_code == 200
    assert own_name in own.text

    other = await client.get(f"{base}/{theirs_id}{suffix}", follow_redirects=False)
    random = await client.get(f"{base}/{random_id}{suffix}", follow_redirects=False)
    assert other.status_code == random.status_code == 404
    assert theirs_name not in other.text
    assert _masked(other.text, theirs_id) == _masked(random.text, random_id)
    assert other.headers.get("content-type") == random.headers.get("content-type")


async def test_posting_an_edit_of_other_tenants_customer_is_404_like_a_random_id(
    db, signed_in_a, tenant_a, tenant_b, customers
):
    client = signed_in_a
    base = f"/t/{tenant_a.slug}/customers"
    theirs_id, theirs_name = customers["theirs"]
    random_id = customers["random"]
    token = await csrf_token(client)
    form = {
        "_csrf_token": token,
        "kind": "individual",
        "name": unique("hijacked"),
        "risk_level": "low",
        "status": "prospect",
    }

    other = await client.post(f"{base}/{theirs_id}/edit", data=form, follow_redirects=False)
    random = await client.post(f"{base}/{random_id}/edit", data=form, follow_redirects=False)
    assert other.status_code == random.status_code == 404
    assert _masked(other.text, theirs_id) == _masked(random.text, random_id)
    assert await customer_name(db, tenant_b, uuid.UUID(theirs_id)) == theirs_name

    # Control: the same form does save a's own customer.
    own_id, _ = customers["own"]
    own = await client.post(f"{base}/{own_id}/edit", data=form, follow_redirects=False)
    assert own.status_code == 303
    assert await customer_name(db, tenant_a, uuid.UUID(own_id)) == form["name"]
