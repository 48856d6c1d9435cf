"""The tenant admin's side of support access: grant platform support a time-limited look, revoke it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.operators.support_service import HOURS_CHOICES, MAX_REASON, SupportAccessService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.rendering import form_values, page
from tenantcrm.web.scope import WebScope
from tenantcrm.web.settings import settings_sections


class SupportPages(Controller):
    path = "/t/{slug:str}/settings/support"

    @get("/", name="settings_support")
    async def show(self, request: Request, web_scope: WebScope, done: str | None = None) -> Response:
        return await _render(request, web_scope, done=done if done in ("granted", "revoked") else None)

    @post("/", name="settings_support_grant")
    async def grant(self, request: Request, web_scope: WebScope) -> Response:
        values = await form_values(request, ("hours", "reason"))
        service = SupportAccessService(web_scope.session, web_scope.principal, request.app.state.db)
        try:
            await service.grant(values["hours"], values["reason"])
        except InvalidInput as invalid:
            return await _render(request, web_scope, status_code=422, values=values, errors=invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/support?done=granted", status_code=303)

    @post("/revoke", name="settings_support_revoke")
    async def revoke(self, request: Request, web_scope: WebScope) -> Redirect:
        await SupportAccessService(web_scope.session, web_scope.principal, request.app.state.db).revoke()
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/support?done=revoked", status_code=303)


async def _render(
    request: Request,
    scope: WebScope,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: InvalidInput | None = None,
    done: str | None = None,
) -> Response:
    grants = await SupportAccessService(scope.session, scope.principal, request.app.state.db).grants()
    context: dict[str, Any] = {
        "slug": scope.tenant.slug,
        "section": "support",
        "sections": settings_sections(scope.principal),
        "grants": grants,
        "live": next((g for g in grants if g.live), None),
        "hours_choices": HOURS_CHOICES,
        "max_reason": MAX_REASON,
        "values": values or {"hours": "24", "reason": ""},
        "errors": errors,
        "done": done,
    }
    return page(request, "settings/support.html", status_code=status_code, **context)
