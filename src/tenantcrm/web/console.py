"""The platform console at /platform/: operators' sign-in (password, then TOTP) and tenant pages.

An operator session lives in a cookie of its own (`tcrm_platform`, Path=/platform), looked up in
`platform.operator_sessions`; a tenant's session cookie is never read here, and the operator
cookie is never read by tenant routes, so neither kind of session authorises the other's pages.
Routes parse, call one service in `tenantcrm.operators`, and render.
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from tenantcrm.auth.service import SignInFailed, SignInThrottled
from tenantcrm.database import Database
from tenantcrm.operators import console_service, service
from tenantcrm.operators.service import CodeNotDue, OperatorPrincipal
from tenantcrm.operators.support_service import (
    SupportAccessRefused,
    grant_history,
    record_refused_view,
    support_view,
)
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.tenant import ACTIVE, SPARE, SUSPENDED, Tenant
from tenantcrm.validation import InvalidInput
from tenantcrm.web.errors import not_found
from tenantcrm.web.rendering import form_values, gettext_for, page

HOME = "/platform/"
LOGIN = "/platform/login"
COOKIE_PATH = "/platform"
PROVISION_FIELDS = ("slug", "name", "admin_email")


class OperatorNotSignedIn(Exception):
    """No live, fully signed-in operator session: the console sends the visitor to its sign-in."""


def operator_cookie_name(settings: Settings) -> str:
    # Not __Host-: that prefix demands Path=/, and this cookie must stay under /platform.
    return "__Secure-tcrm_platform" if settings.secure_cookies else "tcrm_platform"


def _cookie(request: Request) -> str | None:
    return request.cookies.get(operator_cookie_name(request.app.state.settings))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _with_cookie(response: Response, settings: Settings, value: str) -> Response:
    response.set_cookie(
        operator_cookie_name(settings),
        value,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="strict",
    )
    return response


def _without_cookie(response: Response, settings: Settings) -> Response:
    response.delete_cookie(operator_cookie_name(settings), path=COOKIE_PATH)
    return response


async def provide_operator(request: Request) -> OperatorPrincipal:
    operator = await service.operator_from_session(request.app.state.db, _cookie(request))
    if operator is None:
        raise OperatorNotSignedIn()
    return operator


def operator_not_signed_in(request: Request, exc: OperatorNotSignedIn) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=401, headers={"HX-Redirect": LOGIN})
    return Redirect(LOGIN, status_code=303)


def support_refused(request: Request, exc: SupportAccessRefused) -> Response:
    return page(request, "platform/no_grant.html", status_code=403, slug=str(exc))


CONSOLE_EXCEPTION_HANDLERS = {
    OperatorNotSignedIn: operator_not_signed_in,
    SupportAccessRefused: support_refused,
    console_service.TenantNotFound: not_found,
}


class ConsoleSignIn(Controller):
    """Step 1 (password) and step 2 (TOTP code); both are throttled."""

    path = "/platform"

    @get("/login", name="console_login_form")
    async def login_form(self, request: Request) -> Response:
        return page(request, "platform/login.html", email="", error=None)

    @post("/login", name="console_login")
    async def login(self, request: Request) -> Response:
        settings: Settings = request.app.state.settings
        values = await form_values(request, ("email", "password"))
        _ = gettext_for(request)
        try:
            secret = await service.check_password(
                request.app.state.db,
                values["email"],
                values["password"],
                address=_address(request),
                previous_cookie=_cookie(request),
            )
        except SignInThrottled:
            error = _("Too many failed attempts. Try again in 15 minutes.")
            return page(request, "platform/login.html", status_code=429, email=values["email"], error=error)
        except SignInFailed:
            error = _("E-mail or password is incorrect.")
            return page(request, "platform/login.html", status_code=401, email=values["email"], error=error)
        return _with_cookie(Redirect(f"{LOGIN}/code", status_code=303), settings, secret)

    @get("/login/code", name="console_code_form")
    async def code_form(self, request: Request) -> Response:
        if not await service.awaiting_code(request.app.state.db, _cookie(request)):
            return Redirect(LOGIN, status_code=303)
        return page(request, "platform/code.html", error=None)

    @post("/login/code", name="console_code")
    async def code(self, request: Request) -> Response:
        settings: Settings = request.app.state.settings
        values = await form_values(request, ("code",))
        _ = gettext_for(request)
        try:
            secret = await service.check_code(
                request.app.state.db,
                request.app.state.key_ring,
                _cookie(request),
                values["code"],
                address=_address(request),
            )
        except CodeNotDue:
            return Redirect(LOGIN, status_code=303)
        except SignInThrottled:
            error = _("Too many wrong codes. Sign in again in 15 minutes.")
            response = page(request, "platform/login.html", status_code=429, email="", error=error)
            return _without_cookie(response, settings)
        except SignInFailed:
            error = _("The code is wrong, or was already used. Enter the next code your app shows.")
            return page(request, "platform/code.html", status_code=401, error=error)
        return _with_cookie(Redirect(HOME, status_code=303), settings, secret)


class ConsolePages(Controller):
    """Everything else under /platform/: a signed-in operator only."""

    path = "/platform"
    dependencies = {"operator": Provide(provide_operator)}  # noqa: RUF012 - Litestar's declaration

    @post("/logout", name="console_logout")
    async def logout(self, request: Request, operator: OperatorPrincipal) -> Response:
        await service.sign_out(request.app.state.db, operator, _cookie(request) or "")
        return _without_cookie(Redirect(LOGIN, status_code=303), request.app.state.settings)

    @get("/", name="console_tenants")
    async def tenants(
        self, request: Request, operator: OperatorPrincipal, after: str | None = None
    ) -> Response:
        listing = await console_service.tenant_page(request.app.state.db, operator, after)
        return page(request, "platform/tenants.html", operator=operator, listing=listing)

    @get("/tenants/new", name="console_new_tenant")
    async def new_tenant(self, request: Request, operator: OperatorPrincipal) -> Response:
        values = dict.fromkeys(PROVISION_FIELDS, "")
        return page(request, "platform/new_tenant.html", operator=operator, values=values, errors=None)

    @post("/tenants/new", name="console_provision")
    async def provision(self, request: Request, operator: OperatorPrincipal) -> Response:
        values = await form_values(request, PROVISION_FIELDS)
        try:
            created = await console_service.provision(_lifecycle(request), operator, **values)
        except (InvalidInput, console_service.ConsoleRefusal) as refused:
            return page(
                request,
                "platform/new_tenant.html",
                status_code=422,
                operator=operator,
                values=values,
                errors=refused if isinstance(refused, InvalidInput) else None,
                problem=refused if isinstance(refused, console_service.ConsoleRefusal) else None,
            )
        # The first admin's password is shown in this answer once: never a redirect, never a URL.
        return page(request, "platform/created.html", operator=operator, created=created)

    @get("/tenants/{slug:str}", name="console_tenant")
    async def tenant(
        self, request: Request, operator: OperatorPrincipal, slug: str, saved: str | None = None
    ) -> Response:
        tenant = await _tenant(request, slug)
        return await self._tenant_page(request, operator, tenant, saved=saved == "quotas")

    async def _tenant_page(
        self,
        request: Request,
        operator: OperatorPrincipal,
        tenant: Tenant,
        *,
        status_code: int = 200,
        **extra,
    ) -> Response:
        db: Database = request.app.state.db
        # The quota usage is the page's counts too: a tenant's customers are counted once.
        quotas = await console_service.quotas(db, operator, tenant)
        users, customers = (quotas.users, quotas.customers) if quotas else (None, None)
        version = await console_service.schema_version(db, tenant) if quotas else None
        return page(
            request,
            "platform/tenant.html",
            status_code=status_code,
            operator=operator,
            tenant=tenant,
            users=users,
            customers=customers,
            schema_version=version,
            grants=await grant_history(db, tenant),
            quotas=quotas,
            **extra,
        )

    @post("/tenants/{slug:str}/suspend", name="console_suspend")
    async def suspend(self, request: Request, operator: OperatorPrincipal, slug: str) -> Response:
        return await self._set_status(request, operator, slug, SUSPENDED)

    @post("/tenants/{slug:str}/resume", name="console_resume")
    async def resume(self, request: Request, operator: OperatorPrincipal, slug: str) -> Response:
        return await self._set_status(request, operator, slug, ACTIVE)

    async def _set_status(
        self, request: Request, operator: OperatorPrincipal, slug: str, status: str
    ) -> Response:
        tenant = await _tenant(request, slug)
        try:
            await console_service.set_status(_lifecycle(request), operator, slug, status)
        except console_service.ConsoleRefusal as refused:
            return await self._tenant_page(request, operator, tenant, status_code=422, problem=refused)
        return Redirect(f"/platform/tenants/{slug}", status_code=303)

    @post("/tenants/{slug:str}/quotas", name="console_quotas")
    async def set_quotas(self, request: Request, operator: OperatorPrincipal, slug: str) -> Response:
        tenant = await _tenant(request, slug)
        values = await form_values(request, console_service.QUOTA_FIELDS)
        try:
            await console_service.set_tenant_quotas(_lifecycle(request), operator, slug, values)
        except InvalidInput as invalid:
            return await self._tenant_page(
                request, operator, tenant, status_code=422, quota_errors=invalid, quota_values=values
            )
        except console_service.ConsoleRefusal as refused:
            return await self._tenant_page(request, operator, tenant, status_code=422, problem=refused)
        return Redirect(f"/platform/tenants/{slug}?saved=quotas", status_code=303)

    @post("/tenants/{slug:str}/delete", name="console_delete")
    async def delete(self, request: Request, operator: OperatorPrincipal, slug: str) -> Response:
        tenant = await _tenant(request, slug)
        values = await form_values(request, ("confirm",))
        try:
            await console_service.delete(_lifecycle(request), operator, slug, values["confirm"])
        except InvalidInput as invalid:
            return await self._tenant_page(request, operator, tenant, status_code=422, errors=invalid)
        return Redirect(HOME, status_code=303)

    @post("/tenants/{slug:str}/support", name="console_support")
    async def support(self, request: Request, operator: OperatorPrincipal, slug: str) -> Response:
        """A POST, so no prefetch or reload by accident writes the two audit entries a look costs."""
        db: Database = request.app.state.db
        tenant = await _tenant(request, slug)
        try:
            view = await support_view(db, operator, tenant)
        except SupportAccessRefused:
            await record_refused_view(db, operator, tenant)
            raise
        return page(request, "platform/support.html", operator=operator, tenant=tenant, view=view)

    @get("/events", name="console_events")
    async def events(
        self,
        request: Request,
        operator: OperatorPrincipal,
        tenant: str | None = None,
        before: int | None = None,
    ) -> Response:
        result = await service.list_events(request.app.state.db, operator, tenant_slug=tenant, before=before)
        return page(
            request, "platform/events.html", operator=operator, result=result, tenant_filter=tenant or ""
        )


def _lifecycle(request: Request) -> TenantLifecycle:
    return TenantLifecycle(request.app.state.db, request.app.state.settings)


async def _tenant(request: Request, slug: str) -> Tenant:
    tenant = await find_tenant_by_slug(request.app.state.db, slug)
    if tenant is None or tenant.status == SPARE:  # spares are a count on the list, not tenants
        raise NotFoundException()
    return tenant
