"""The GraphQL request context: the API token's principal and its tenant unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.litestar import BaseContext

from tenantcrm.auth.permissions import Principal
from tenantcrm.auth.service import principal_from_api_token, split_api_token
from tenantcrm.customers.service import CipherSource
from tenantcrm.database import Database
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.registry import find_tenant_by_id
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import ACTIVE, SUSPENDED

T = TypeVar("T")


class GraphQLContext(BaseContext, kw_only=True):
    principal: Principal
    session: AsyncSession
    cipher: CipherSource
    lock: asyncio.Lock
    failed: bool = False

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Sibling resolvers run concurrently, but one transaction takes one statement at a time."""
        async with self.lock:
            return await work()


class _RollBack(Exception):
    pass


def _unauthorized() -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
    )


async def graphql_context(request: Request) -> AsyncGenerator[GraphQLContext | None, None]:
    """Authenticate the bearer token, then hold its tenant's transaction for the request.

    The transaction commits unless the operation reported an error.
    """
    if request.method == "GET":
        # GET only serves GraphiQL (queries over GET are off): operations need a token, the IDE not.
        yield None  # type: ignore[misc]
        return
    db: Database = request.app.state.db
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    parts = split_api_token(token.strip()) if scheme.lower() == "bearer" else None
    tenant = await find_tenant_by_id(db, parts[0]) if parts else None
    if parts is None or tenant is None or tenant.status not in (ACTIVE, SUSPENDED):
        raise _unauthorized()
    try:
        async with tenant_session(db, tenant) as session:
            principal = await principal_from_api_token(session, tenant, parts[1])
            if principal is None:
                raise _unauthorized()
            if not tenant.active:  # told only to a valid token's holder
                raise PermissionDeniedException(detail="this institution's account is suspended")
            ring = request.app.state.key_ring
            context = GraphQLContext(
                principal=principal,
                session=session,
                cipher=cipher_source(db, ring, tenant),
                lock=asyncio.Lock(),
            )
            yield context
            if context.failed:
                raise _RollBack
    except _RollBack:
        pass
