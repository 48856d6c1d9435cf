"""Retention pages: the policies in settings, the dry run, a confirmed run with the recent runs,
and legal hold on a customer. Thin routes over RetentionService, which checks admin.retention."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.retention.access_service import FORMATS, AccessExportService
from tenantcrm.retention.erasure_service import BASES, REQUESTERS, ErasureService
from tenantcrm.retention.models import ErasureRequest, RetentionPolicy
from tenantcrm.retention.service import ACTIONS, CATEGORIES, DELETE_ONLY, RetentionResult, RetentionService
from tenantcrm.validation import InvalidInput, parse_uuid
from tenantcrm.web.imports import attachment
from tenantcrm.web.rendering import is_htmx, page
from tenantcrm.web.scope import WebScope
from tenantcrm.web.settings import settings_sections

PLAN_TARGET = "retention-plan"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERASURE_FIELDS = ("customer_id", "basis", "requester", "action")


async def _render(
    request: Request,
    scope: WebScope,
    *,
    status_code: int = 200,
    values: dict[str, dict[str, Any]] | None = None,
    errors: InvalidInput | None = None,
    plan: RetentionResult | None = None,
    confirm: bool = False,
    **flags: Any,
) -> Response:
    service = RetentionService(scope.session, scope.principal)
    policies: list[RetentionPolicy] = await service.policies()
    shown = {
        p.category: {"period_days": str(p.period_days), "action": p.action, "enabled": p.enabled}
        for p in policies
    } | (values or {})
    context = {
        "slug": scope.tenant.slug,
        "plan": plan,
        "confirm": confirm,
        "categories": [c for c in CATEGORIES if c in shown],
    }
    if plan is not None and is_htmx(request) and request.headers.get("hx-target") == PLAN_TARGET:
        return page(request, "retention/_plan.html", **context)
    return page(
        request,
        "retention/settings.html",
        status_code=status_code,
        section="retention",
        sections=settings_sections(scope.principal),
        values=shown,
        errors=errors,
        actions=ACTIONS,
        delete_only=DELETE_ONLY,
        runs=await service.recent_runs(),
        **context,
        **flags,
    )


async def _render_erasures(
    request: Request,
    scope: WebScope,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: InvalidInput | None = None,
) -> Response:
    return page(
        request,
        "retention/erasures.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        section="retention",
        sections=settings_sections(scope.principal),
        requests=await ErasureService(scope.session, scope.principal).recent(),
        values=values or {},
        errors=errors,
        bases=BASES,
        requesters=REQUESTERS,
        actions=ACTIONS,
    )


async def _render_erasure(
    request: Request,
    scope: WebScope,
    erasure: ErasureRequest,
    *,
    status_code: int = 200,
    errors: InvalidInput | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    service = ErasureService(scope.session, scope.principal)
    return page(
        request,
        "retention/erasure.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        section="retention",
        sections=settings_sections(scope.principal),
        erasure=erasure,
        staff=await service.staff_names(erasure),
        errors=errors,
        values=values or {},
    )


def _render_access(
    request: Request,
    scope: WebScope,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: InvalidInput | None = None,
) -> Response:
    return page(
        request,
        "retention/access.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        section="retention",
        sections=settings_sections(scope.principal),
        values=values or {},
        errors=errors,
        formats=FORMATS,
    )


class RetentionPages(Controller):
    path = "/t/{slug:str}"

    @get("/settings/retention", name="settings_retention")
    async def show(
        self, request: Request, web_scope: WebScope, saved: str | None = None, ran: str | None = None
    ) -> Response:
        return await _render(request, web_scope, saved=bool(saved), ran=bool(ran))

    @post("/settings/retention", name="settings_save_retention")
    async def save(self, request: Request, web_scope: WebScope) -> Response:
        """One row per category: `<category>.period_days`, `.action` and the `.enabled` box."""
        form = await request.form()
        rows = [
            {
                "category": category,
                "period_days": str(form.get(f"{category}.period_days") or ""),
                "action": str(form.get(f"{category}.action") or ""),
                "enabled": str(form.get(f"{category}.enabled") or ""),
            }
            for category in CATEGORIES
        ]
        try:
            await RetentionService(web_scope.session, web_scope.principal).update_policies(rows)
        except InvalidInput as invalid:
            typed = {
                row["category"]: {
                    "period_days": row["period_days"],
                    "action": row["action"],
                    "enabled": row["enabled"] == "on",
                }
                for row in rows
            }
            return await _render(request, web_scope, status_code=422, values=typed, errors=invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/retention?saved=1", status_code=303)

    @post("/settings/retention/dry-run", name="settings_retention_dry_run")
    async def dry_run(self, request: Request, web_scope: WebScope) -> Response:
        plan = await RetentionService(web_scope.session, web_scope.principal).plan()
        return await _render(request, web_scope, plan=plan)

    @post("/settings/retention/run", name="settings_retention_run")
    async def run(self, request: Request, web_scope: WebScope) -> Response:
        """Without `confirm=yes` this shows what the run would do and asks; with it, runs."""
        form = await request.form()
        service = RetentionService(web_scope.session, web_scope.principal)
        if form.get("confirm") != "yes":
            return await _render(request, web_scope, plan=await service.plan(), confirm=True)
        await service.run()
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/retention?ran=1", status_code=303)

    @post("/customers/{customer_id:str}/legal-hold", name="customer_legal_hold")
    async def legal_hold(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        """`hold=on` puts the customer on legal hold, anything else releases it."""
        form = await request.form()
        customer = await RetentionService(web_scope.session, web_scope.principal).set_legal_hold(
            customer_id, form.get("hold") == "on"
        )
        return Redirect(f"/t/{web_scope.tenant.slug}/customers/{customer.id}", status_code=303)

    @get("/settings/retention/erasures", name="erasure_requests")
    async def erasures(self, request: Request, web_scope: WebScope, customer: str | None = None) -> Response:
        """`?customer=<id>` fills the form in (a link from a customer's page: an id, no personal data)."""
        prefill = {"customer_id": customer} if customer and parse_uuid(customer) else {}
        return await _render_erasures(request, web_scope, values=prefill)

    @post("/settings/retention/erasures", name="erasure_request_create")
    async def request_erasure(self, request: Request, web_scope: WebScope) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "").strip() for name in ERASURE_FIELDS}
        try:
            erasure = await ErasureService(web_scope.session, web_scope.principal).request(
                values["customer_id"], values
            )
        except InvalidInput as invalid:
            return await _render_erasures(request, web_scope, status_code=422, values=values, errors=invalid)
        return Redirect(
            f"/t/{web_scope.tenant.slug}/settings/retention/erasures/{erasure.id}", status_code=303
        )

    @get("/settings/retention/erasures/{erasure_id:str}", name="erasure_request")
    async def erasure(self, request: Request, web_scope: WebScope, erasure_id: str) -> Response:
        erasure = await ErasureService(web_scope.session, web_scope.principal).get(erasure_id)
        return await _render_erasure(request, web_scope, erasure)

    @post("/settings/retention/erasures/{erasure_id:str}/review", name="erasure_request_review")
    async def review(self, request: Request, web_scope: WebScope, erasure_id: str) -> Response:
        form = await request.form()
        values = {"decision": str(form.get("decision") or ""), "note": str(form.get("note") or "")}
        service = ErasureService(web_scope.session, web_scope.principal)
        try:
            erasure = await service.review(erasure_id, values)
        except InvalidInput as invalid:
            erasure = await service.get(erasure_id)
            return await _render_erasure(
                request, web_scope, erasure, status_code=422, errors=invalid, values=values
            )
        return Redirect(
            f"/t/{web_scope.tenant.slug}/settings/retention/erasures/{erasure.id}", status_code=303
        )

    @post("/settings/retention/erasures/{erasure_id:str}/execute", name="erasure_request_execute")
    async def execute(self, request: Request, web_scope: WebScope, erasure_id: str) -> Response:
        service = ErasureService(web_scope.session, web_scope.principal)
        try:
            erasure = await service.execute(erasure_id)
        except InvalidInput as invalid:
            erasure = await service.get(erasure_id)
            return await _render_erasure(request, web_scope, erasure, status_code=422, errors=invalid)
        return Redirect(
            f"/t/{web_scope.tenant.slug}/settings/retention/erasures/{erasure.id}", status_code=303
        )

    @get("/settings/retention/access", name="access_export")
    async def access(self, request: Request, web_scope: WebScope, customer: str | None = None) -> Response:
        AccessExportService(web_scope.session, web_scope.principal, web_scope.cipher).check_can_export()
        prefill = {"customer_id": customer} if customer and parse_uuid(customer) else {}
        return _render_access(request, web_scope, values=prefill)

    @post("/settings/retention/access", name="access_export_download")
    async def download(self, request: Request, web_scope: WebScope) -> Response:
        """The file is the answer to this POST (no redirect, no URL holding it), never cached."""
        form = await request.form()
        values = {name: str(form.get(name) or "").strip() for name in ("customer_id", "purpose", "format")}
        service = AccessExportService(web_scope.session, web_scope.principal, web_scope.cipher)
        try:
            export = await service.export(
                values["customer_id"], purpose=values["purpose"], output=values["format"]
            )
        except InvalidInput as invalid:
            return _render_access(request, web_scope, status_code=422, values=values, errors=invalid)
        name = f"access-{str(export.customer_id)[:8]}.{values['format']}"
        if values["format"] == "json":
            content, media_type = export.to_json(), "application/json"
        else:
            content, media_type = export.to_xlsx(), XLSX
        return Response(
            content=content,
            status_code=200,
            media_type=media_type,
            headers={"Content-Disposition": attachment(name), "Cache-Control": "no-store"},
        )
