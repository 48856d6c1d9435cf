"""Saved views of the customer list: save the view on screen, choose the default, delete; thin routes
over SavedViewService, which keeps every user to their own views."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.saved_views.service import SavedViewService
from tenantcrm.settings import Settings
from tenantcrm.validation import InvalidInput
from tenantcrm.web.customers import CUSTOMER_LIST, ListView, render_list
from tenantcrm.web.rendering import page
from tenantcrm.web.scope import WebScope

LIST = "customers"


def _service(scope: WebScope) -> SavedViewService:
    return SavedViewService(scope.session, scope.principal)


class SavedViewPages(Controller):
    path = "/t/{slug:str}/customers/views"

    @get("/", name="saved_views")
    async def manage(self, request: Request, web_scope: WebScope) -> Response:
        settings: Settings = request.app.state.settings
        views = await _service(web_scope).views(LIST)
        base = f"/t/{web_scope.tenant.slug}/customers"
        return page(
            request,
            "customers/views.html",
            slug=web_scope.tenant.slug,
            views=[(v, f"{base}?{ListView.from_saved(v).query(settings.secret_key, '')}") for v in views],
            all_columns=CUSTOMER_LIST.columns,
        )

    @post("/", name="saved_view_create")
    async def create(self, request: Request, web_scope: WebScope) -> Response:
        """The view on screen under a name. Refused: the list comes back as it was, the form open
        with its message beside the name."""
        form = await request.form()
        shown = ListView.from_values({**dict(form), "columns": form.getall("cols", [])})
        values: dict[str, Any] = {
            "name": str(form.get("name") or ""),
            "columns": list(shown.columns),
            "filters": {"risk_level": shown.risk_level, "status": shown.status},
            "sort": shown.sort,
            "direction": shown.direction,
            "is_default": form.get("is_default") == "on",
        }
        try:
            saved = await _service(web_scope).create(LIST, values)
        except InvalidInput as invalid:
            return await render_list(
                request, web_scope, shown, status_code=422, view_values=values, view_errors=invalid
            )
        settings: Settings = request.app.state.settings
        query = ListView.from_saved(saved).query(settings.secret_key, "")
        return Redirect(f"/t/{web_scope.tenant.slug}/customers?{query}", status_code=303)

    @post("/{view_id:str}/default", name="saved_view_default")
    async def make_default(self, request: Request, web_scope: WebScope, view_id: str) -> Redirect:
        """`default=on` makes the view the one the list opens with; anything else stops that."""
        form = await request.form()
        await _service(web_scope).set_default(LIST, view_id, form.get("default") == "on")
        return Redirect(f"/t/{web_scope.tenant.slug}/customers/views", status_code=303)

    @post("/{view_id:str}/delete", name="saved_view_delete")
    async def delete(self, request: Request, web_scope: WebScope, view_id: str) -> Redirect:
        await _service(web_scope).delete(LIST, view_id)
        return Redirect(f"/t/{web_scope.tenant.slug}/customers/views", status_code=303)
