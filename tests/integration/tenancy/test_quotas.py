"""Per-tenant quotas: set and read, and refused users and customers on every path, nothing written."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest
from sqlalchemy import func, select, text

from tenantcrm.audit.models import AuditEvent
from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.models import User
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy import quotas
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import api_token_for, make_tenant, principal_of, web_sign_in
from tests.integration.tenancy.test_cli import cli_env, run_cli  # noqa: F401 (a fixture)

CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on Customer { id }
    ... on QuotaExceededError { message quota limit used }
  }
}
"""


async def count(db, tenant, model, *where) -> int:
    async with tenant_session(db, tenant) as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def limited(lifecycle, **limits):
    """A new tenant with these quotas set, as the registry now has it."""
    org = await make_tenant(lifecycle, "quota")
    await quotas.set_quotas(lifecycle.db, org.tenant, **limits)
    return org, await lifecycle.get(org.slug)


async def add_customers(db, settings, tenant, email: str, count_: int) -> None:
    principal = await principal_of(db, tenant, email)
    async with tenant_session(db, tenant) as session:
        service = CustomerService(session, principal, cipher_source(db, master_key_ring(settings), tenant))
        for n in range(count_):
            await service.create_customer({"kind": "individual", "name": f"客户 {n}"})


async def test_set_and_get_limits_with_usage(db, lifecycle):
    org = await make_tenant(lifecycle, "quota")
    fresh = await quotas.get_quotas(db, org.tenant)
    assert fresh.limits == quotas.QuotaLimits() and fresh.users == 1 and fresh.customers == 0
    assert fresh.storage_bytes > 0

    changed = await quotas.set_quotas(db, org.tenant, users=5, customers=0)
    assert changed.limits == quotas.QuotaLimits(users=5, customers=0, storage_mb=None)
    again = await quotas.set_quotas(db, org.tenant, storage_mb=200, users=None)
    assert again.limits == quotas.QuotaLimits(users=None, customers=0, storage_mb=200)
    assert (await lifecycle.get(org.slug)).limits == again.limits  # what every request reads

    for bad in (-1, 10**13, True, "5", 1.5):
        with pytest.raises(InvalidInput) as refused:
            await quotas.set_quotas(db, org.tenant, customers=1, users=bad)
        assert refused.value.errors[0].field == "users"
    assert (await quotas.get_quotas(db, org.tenant)).limits == again.limits  # nothing of it kept


async def test_customer_form_at_the_limit_says_so_and_writes_nothing(db, lifecycle, settings, client):
    org, tenant = await limited(lifecycle, customers=2)
    await add_customers(db, settings, tenant, org.admin_email, 2)
    await web_sign_in(client, org.slug, org.admin_email)
    before = await count(db, tenant, AuditEvent)
    for language, expected in (("zh-CN", "已达到 2 位客户的上限"), ("en", "its limit of 2 customers")):
        await client.get(f"/t/{org.slug}/customers/new")
        refused = await client.post(
            f"/t/{org.slug}/customers/new",
            data={"_csrf_token": client.cookies["csrftoken"], "kind": "individual", "name": "第三位"},
            headers={"Accept-Language": language},
            follow_redirects=False,
        )
        assert refused.status_code == 422 and expected in refused.text
        assert 'value="第三位"' in refused.text  # the form keeps what was typed
    assert await count(db, tenant, Customer) == 2
    assert await count(db, tenant, AuditEvent) == before

    await quotas.set_quotas(db, tenant, customers=3)  # raised: the next request reads it
    accepted = await client.post(
        f"/t/{org.slug}/customers/new",
        data={"_csrf_token": client.cookies["csrftoken"], "kind": "individual", "name": "第三位"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303 and await count(db, tenant, Customer) == 3


async def test_graphql_answers_a_typed_quota_error(db, lifecycle, settings, client):
    org, tenant = await limited(lifecycle, customers=1)
    token = await api_token_for(db, tenant, org.admin_email)
    headers = {"Authorization": f"Bearer {token}"}

    async def create(name: str) -> dict:
        variables = {"input": {"kind": "INDIVIDUAL", "name": name}}
        response = await client.post(
            "/graphql", json={"query": CREATE, "variables": variables}, headers=headers
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        return response.json()["data"]["createCustomer"]

    assert (await create("一号"))["__typename"] == "Customer"
    refused = await create("二号")
    assert refused == {
        "__typename": "QuotaExceededError",
        "message": refused["message"],
        "quota": "customers",
        "limit": 1,
        "used": 1,
    }
    assert "limit of 1 customers" in refused["message"]
    assert await count(db, tenant, Customer) == 1


async def test_storage_limit_refuses_growth(db, lifecycle, settings):
    # Zero MB is reached by any schema: the check is on the size reached, before the write.
    org, tenant = await limited(lifecycle, storage_mb=0)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        await add_customers(db, settings, tenant, org.admin_email, 1)
    assert refused.value.resource == "storage_mb" and refused.value.errors[0].code == "quota_storage_mb"
    assert await count(db, tenant, Customer) == 0
    await quotas.set_quotas(db, tenant, storage_mb=1000)
    await add_customers(db, settings, await lifecycle.get(org.slug), org.admin_email, 1)
    assert await count(db, tenant, Customer) == 1


async def test_two_writers_at_the_last_place_cannot_both_pass(db, lifecycle, settings):
    org, tenant = await limited(lifecycle, customers=1)
    principal = await principal_of(db, tenant, org.admin_email)
    cipher = cipher_source(db, master_key_ring(settings), tenant)

    async def second_writer() -> None:
        async with tenant_session(db, tenant) as session:
            await CustomerService(session, principal, cipher).create_customer(
                {"kind": "individual", "name": "乙"}
            )

    async with tenant_session(db, tenant) as session:
        await CustomerService(session, principal, cipher).create_customer(
            {"kind": "individual", "name": "甲"}
        )
        second = asyncio.create_task(second_writer())
        # The second writer must be waiting on the quota lock before the first commits; without
        # the lock it would count the uncommitted first as absent and pass.
        for _ in range(200):
            async with db.admin_engine.connect() as conn:
                waiting = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND wait_event = 'advisory' AND datname = current_database()"
                    )
                )
            if waiting or second.done():
                break
            await asyncio.sleep(0.05)
        assert waiting == 1 and not second.done()
    with pytest.raises(quotas.QuotaExceeded):
        await second
    assert await count(db, tenant, Customer) == 1


async def test_users_at_the_limit_are_refused_on_the_page_and_when_enabled(db, lifecycle, client):
    org, tenant = await limited(lifecycle, users=2)
    await web_sign_in(client, org.slug, org.admin_email)
    page = await client.get(f"/t/{org.slug}/settings/users")
    assert page.status_code == 200

    async def invite(email: str) -> httpx.Response:
        return await client.post(
            f"/t/{org.slug}/settings/users",
            data={
                "_csrf_token": client.cookies["csrftoken"],
                "email": email,
                "display_name": "",
                "role": "loan_officer",
                "team": "",
            },
        )

    second = f"two-{secrets.token_hex(3)}@example.com"
    assert (await invite(second)).status_code == 200
    refused = await invite("three@example.com")
    assert refused.status_code == 422 and "已达到 2 位活跃用户的上限" in refused.text
    assert await count(db, tenant, User) == 2

    # A disabled user frees a place; enabling another one beyond the limit is refused.
    admin = await principal_of(db, tenant, org.admin_email)
    async with tenant_session(db, tenant) as session:
        second_id = await session.scalar(select(User.id).where(User.email == second))
        await AccessAdminService(session, admin).set_status(second_id, "disabled")
    assert (await invite("three@example.com")).status_code == 200
    with pytest.raises(quotas.QuotaExceeded):
        async with tenant_session(db, tenant) as session:
            await AccessAdminService(session, admin).set_status(second_id, "active")
    assert await count(db, tenant, User, User.status == "active") == 2


async def test_cli_shows_and_sets_quotas_and_refuses_users_beyond_them(cli_env, db, lifecycle):  # noqa: F811
    org = await make_tenant(lifecycle, "quota")
    shown = run_cli(cli_env, "tenants", "quota", org.slug, "--json")
    assert shown.returncode == 0, shown.stderr
    usage = json.loads(shown.stdout)
    assert usage["users"] == {"limit": None, "used": 1} and usage["customers"] == {"limit": None, "used": 0}
    assert usage["storage_mb"]["limit"] is None and usage["storage_mb"]["used"] > 0

    set_ = run_cli(cli_env, "tenants", "quota", org.slug, "--users", "1", "--customers", "100", "--json")
    assert set_.returncode == 0, set_.stderr
    assert json.loads(set_.stdout)["users"] == {"limit": 1, "used": 1}
    assert json.loads(set_.stdout)["customers"] == {"limit": 100, "used": 0}
    text_out = run_cli(cli_env, "tenants", "quota", org.slug, "--customers", "none")
    assert text_out.returncode == 0 and "customers    0 / no limit" in text_out.stdout

    for bad in ("-1", "many", "١٢"):
        refused = run_cli(cli_env, "tenants", "quota", org.slug, "--users", bad)
        assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
            "error: --users takes a whole number of 0 or more, or none"
        ]
    too_big = run_cli(cli_env, "tenants", "quota", org.slug, "--storage-mb", str(10**13))
    assert too_big.returncode == 1 and len(too_big.stderr.strip().splitlines()) == 1
    assert (await lifecycle.get(org.slug)).limits == quotas.QuotaLimits(users=1)

    beyond = run_cli(
        cli_env, "users", "create", "--tenant", org.slug, "--email", "extra@example.com", "--role", "viewer"
    )
    assert beyond.returncode == 1 and beyond.stderr.strip().splitlines() == [
        "error: quota: Your institution has reached its limit of 1 active users, so nothing was saved."
        " Ask your service provider to raise it."
    ]
    assert await count(db, org.tenant, User) == 1
