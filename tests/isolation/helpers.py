"""Helpers of the isolation suite: principals, customers, web sign-in and GraphQL calls."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.permissions import Principal
from tenantcrm.auth.service import find_user_by_email, principal_for_user
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.tenancy.session import tenant_session

SESSION_COOKIE = "tcrm_session"  # settings.secure_cookies is False in the tests
CSRF_FIELD = re.compile(r'<input[^>]*name="_csrf_token"[^>]*value="([^"]+)"')
WHO_AND_WHERE = text("SELECT current_user, current_setting('search_path'), pg_backend_pid()")


def unique(label: str) -> str:
    """A name no other test (nor another run on the same tenants) uses."""
    return f"{label}-{uuid.uuid4().hex}"


async def principal_in(session: AsyncSession, fixture: Any) -> Principal:
    """The tenant admin's principal, built the way sign-in builds it."""
    user = await find_user_by_email(session, fixture.admin_email)
    assert user is not None
    principal = await principal_for_user(session, fixture.tenant, user.id)
    assert principal is not None
    return principal


async def create_customer(db: Database, fixture: Any, name: str) -> uuid.UUID:
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, await principal_in(session, fixture))
        customer = await service.create_customer({"kind": "individual", "name": name})
        return customer.id


async def customer_name(db: Database, fixture: Any, customer_id: uuid.UUID) -> str | None:
    async with tenant_session(db, fixture.tenant) as session:
        return await session.scalar(select(Customer.name).where(Customer.id == customer_id))


async def count_named(session: AsyncSession, prefix: str) -> int:
    """Customers visible in the session's tenant whose name starts with `prefix`."""
    return await session.scalar(
        select(func.count()).select_from(Customer).where(Customer.name.startswith(prefix))
    )


def csrf_token_in(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no _csrf_token input in the page"
    return match.group(1)


async def csrf_token(client: Any) -> str:
    """The CSRF token of the client's cookie, read from a page that renders the form field."""
    response = await client.get("/")
    assert response.status_code == 200
    match = re.search(r'"x-csrftoken": "([^"]+)"', response.text)
    assert match, "no csrf token on the index page"
    return match.group(1)


async def web_sign_in(client: Any, slug: str, email: str, password: str) -> str:
    """Sign in through the sign-in page like a browser; returns the session cookie value."""
    form_page = await client.get(f"/t/{slug}/login")
    assert form_page.status_code == 200, form_page.text
    response = await client.post(
        f"/t/{slug}/login",
        data={
            "email": email,
            "password": password,
            "_csrf_token": csrf_token_in(form_page.text),
            "next": f"/t/{slug}/customers",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/t/{slug}/customers"
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie


async def graphql(
    client: Any,
    token: str,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
