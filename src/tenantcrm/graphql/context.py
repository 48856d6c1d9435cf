"""The GraphQL request context: the API token's principal and its tenant unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Request
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.litestar import BaseContext

from tenantcrm.auth.permissions import Principal
from tenantcrm.auth.service import principal_from_api_token, split_api_token
from tenantcrm.customers.service import CipherSource
from tenantcrm.database import Database
from tenantcrm.observability.limits import enforce_rate_limits
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.maintenance import refuse_if_behind
from tenantcrm.tenancy.session import TenantNotFound, tenant_session_by_id
from tenantcrm.tenancy.tenant import ACTIVE, SUSPENDED

if TYPE_CHECKING:
    from tenantcrm.graphql.loaders import Loaders

T = TypeVar("T")


class GraphQLContext(BaseContext, kw_only=True):
    principal: Principal
    session: AsyncSession
    cipher: CipherSource
    lock: asyncio.Lock
    failed: bool = False
    closed: bool = False
    _loaders: Loaders | None = None

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Sibling resolvers run concurrently, but one transaction takes one statement at a time.

        The work runs as a task of its own, shielded: when a sibling fails, graphql-core cancels
        the others, and a statement cancelled half-way would break the connection under the
        transaction's rollback. The caller is cancelled; the statement completes, holding the lock.
        """

        async def locked() -> T:
            async with self.lock:
                if self.closed:
                    raise RuntimeError("the operation's transaction has ended")
                return await work()

        task = asyncio.ensure_future(locked())
        task.add_done_callback(_collect)  # an abandoned task's error is not "never retrieved"
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Wait for the statement in progress, then let no more start: the transaction ends."""
        async with self.lock:
            self.closed = True

    async def write(self, work: Callable[[], Awaitable[T]]) -> T:
        """Like run, for a mutation. A savepoint, so a write refused half-way (an error result is
        data and the operation commits) leaves nothing; and what the loaders read before the
        write is stale after it."""

        async def guarded() -> T:
            async with self.session.begin_nested():
                return await work()

        result = await self.run(guarded)
        self._loaders = None
        return result

    @property
    def loaders(self) -> Loaders:
        """This request's DataLoaders, made on first use."""
        if self._loaders is None:
            from tenantcrm.graphql.loaders import Loaders  # loaders.py imports this module

            self._loaders = Loaders(self)
        return self._loaders


def _collect(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


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
    if parts is None:
        raise _unauthorized()
    try:
        async with tenant_session_by_id(db, parts[0], (ACTIVE, SUSPENDED)) as (tenant, session):
            refuse_if_behind(tenant)  # before the token is looked up in a schema this code does not expect
            principal = await principal_from_api_token(session, tenant, parts[1])
            if principal is None:
                raise _unauthorized()
            if not tenant.active:  # told only to a valid token's holder
                raise PermissionDeniedException(detail="this institution's account is suspended")
            request.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]
            enforce_rate_limits(request, principal, api_token=parts[1])
            ring = request.app.state.key_ring
            context = GraphQLContext(
                principal=principal,
                session=session,
                cipher=cipher_source(db, ring, tenant),
                lock=asyncio.Lock(),
            )
            try:
                yield context
            finally:
                await context.close()
            if context.failed:
                raise _RollBack
    except TenantNotFound:
        raise _unauthorized() from None
    except _RollBack:
        pass
