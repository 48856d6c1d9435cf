"""Who is asking and for which tenant: the web request's principal and unit of work."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.auth.permissions import Principal
from tenantcrm.auth.service import principal_from_session, split_session_cookie
from tenantcrm.customers.service import CipherSource
from tenantcrm.database import Database
from tenantcrm.observability.limits import enforce_rate_limits
from tenantcrm.pii.store import cipher_source
from tenantcrm.settings import Settings
from tenantcrm.tenancy.maintenance import refuse_if_behind
from tenantcrm.tenancy.registry import find_tenant_by_id
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant


class NotSignedIn(Exception):
    """No live session for this tenant: the page sends the visitor to its sign-in."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


class TenantUnavailable(Exception):
    """The tenant exists but is suspended."""


def session_cookie_name(settings: Settings) -> str:
    # __Host- needs Secure, which a browser only keeps over HTTPS.
    return "__Host-tcrm_session" if settings.secure_cookies else "tcrm_session"


@dataclass(frozen=True, slots=True)
class WebScope:
    """A signed-in request: the principal and its tenant's open transaction."""

    principal: Principal
    session: AsyncSession
    cipher: CipherSource
    """The tenant's PII cipher, fetched (and cached) only when a service asks for it."""

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant


async def provide_web_scope(request: Request, slug: str) -> AsyncGenerator[WebScope, None]:
    """Resolve the session cookie to a principal and open the tenant unit of work.

    The tenant comes from the cookie; a URL slug naming any other tenant is a 404.
    """
    state: State = request.app.state
    db: Database = state.db
    settings: Settings = state.settings
    raw = request.cookies.get(session_cookie_name(settings))
    parts = split_session_cookie(raw) if raw else None
    tenant = await find_tenant_by_id(db, parts[0]) if parts else None
    if tenant is None or parts is None:
        raise NotSignedIn(slug)
    if tenant.slug != slug:
        raise NotFoundException()
    if not tenant.active:
        raise TenantUnavailable()
    refuse_if_behind(tenant)
    async with tenant_session(db, tenant) as session:
        principal = await principal_from_session(session, tenant, parts[1])
        if principal is None:
            raise NotSignedIn(slug)
        request.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]
        enforce_rate_limits(request, principal)
        ring = request.app.state.key_ring
        yield WebScope(
            principal=principal,
            session=session,
            cipher=cipher_source(db, ring, tenant),
        )
