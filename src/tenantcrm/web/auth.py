"""Sign-in and sign-out pages of a tenant, and the language switch."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from tenantcrm.auth.service import SignInFailed, SignInThrottled, set_user_locale, sign_in, sign_out
from tenantcrm.database import Database
from tenantcrm.settings import Settings
from tenantcrm.tenancy.maintenance import refuse_if_behind
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.tenant import ACTIVE, SUSPENDED, Tenant
from tenantcrm.web.i18n import LOCALES
from tenantcrm.web.rendering import LANG_COOKIE, gettext_for, page
from tenantcrm.web.scope import TenantUnavailable, WebScope, session_cookie_name


def _safe_next(slug: str, target: str | None) -> str:
    """Only a path inside this tenant's app; anything else would be an open redirect."""
    home = f"/t/{slug}/customers"
    if target and target.startswith(f"/t/{slug}/") and "//" not in target and "\\" not in target:
        return target
    return home


async def _signable_tenant(request: Request, slug: str) -> Tenant:
    tenant = await find_tenant_by_slug(request.app.state.db, slug)
    if tenant is None or tenant.status not in (ACTIVE, SUSPENDED):
        raise NotFoundException()
    if not tenant.active:
        raise TenantUnavailable()
    refuse_if_behind(tenant)
    return tenant


class SignInController(Controller):
    path = "/t/{slug:str}"

    @get("/", name="tenant_home")
    async def home(self, slug: str) -> Redirect:
        return Redirect(f"/t/{slug}/customers", status_code=303)

    @get("/login", name="login_form")
    async def login_form(self, request: Request, slug: str, next: str | None = None) -> Response:
        tenant = await _signable_tenant(request, slug)
        return page(
            request, "auth/login.html", tenant=tenant, next=_safe_next(slug, next), email="", error=None
        )

    @post("/login", name="login")
    async def login(self, request: Request, slug: str) -> Response:
        tenant = await _signable_tenant(request, slug)
        settings: Settings = request.app.state.settings
        db: Database = request.app.state.db
        form = await request.form()
        email = str(form.get("email", ""))
        password = str(form.get("password", ""))
        target = _safe_next(slug, str(form.get("next", "")))
        cookie_name = session_cookie_name(settings)
        _ = gettext_for(request)
        try:
            signed_in = await sign_in(
                db,
                tenant,
                email,
                password,
                address=request.client.host if request.client else "unknown",
                previous_cookie=request.cookies.get(cookie_name),
            )
        except SignInThrottled:
            error = _("Too many failed attempts. Try again in 15 minutes.")
            return page(
                request,
                "auth/login.html",
                status_code=429,
                tenant=tenant,
                next=target,
                email=email,
                error=error,
            )
        except SignInFailed:
            error = _("E-mail or password is incorrect.")
            return page(
                request,
                "auth/login.html",
                status_code=401,
                tenant=tenant,
                next=target,
                email=email,
                error=error,
            )
        response = Redirect(target, status_code=303)
        response.set_cookie(
            cookie_name,
            signed_in.cookie_value,
            path="/",
            httponly=True,
            secure=settings.secure_cookies,
            samesite="lax",
        )
        return response

    @post("/logout", name="logout")
    async def logout(self, request: Request, slug: str, web_scope: WebScope) -> Redirect:
        settings: Settings = request.app.state.settings
        cookie_name = session_cookie_name(settings)
        raw = request.cookies.get(cookie_name, "")
        await sign_out(web_scope.session, web_scope.principal, raw.partition(".")[2])
        response = Redirect(f"/t/{slug}/login", status_code=303)
        response.delete_cookie(cookie_name, path="/")
        return response


class LanguagePages(Controller):
    path = "/t/{slug:str}"

    @post("/language", name="user_language")
    async def choose(self, request: Request, web_scope: WebScope, slug: str) -> Response:
        """A signed-in user's own language, kept with the user (every browser) and in this browser."""
        form = await request.form()
        code = str(form.get("code") or "")
        target = _safe_next(slug, str(form.get("next") or ""))
        if code not in LOCALES:
            return Redirect(target, status_code=303)  # a tampered form: change nothing
        await set_user_locale(web_scope.session, web_scope.principal, code)
        response = Redirect(target, status_code=303)
        response.set_cookie(
            LANG_COOKIE, code, path="/", httponly=True, samesite="lax", max_age=365 * 24 * 3600
        )
        return response


@get("/lang/{code:str}", name="set_language")
async def set_language(code: str, next: str | None = None) -> Redirect:
    """Remember the chosen UI language in a cookie (no personal data involved)."""
    target = next if next and next.startswith("/") and not next.startswith("//") else "/"
    response = Redirect(target, status_code=303)
    if code in LOCALES:
        response.set_cookie(
            LANG_COOKIE, code, path="/", httponly=True, samesite="lax", max_age=365 * 24 * 3600
        )
    return response
