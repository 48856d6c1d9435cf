"""Risk pages: the case board, opening and working a case, flagged customers, the warning rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.risk.case_service import (
    MEASURE_STATUSES,
    STATUSES,
    TRIGGERS,
    RiskCaseService,
)
from tenantcrm.risk.models import WarningRule
from tenantcrm.risk.warning_service import KINDS, THRESHOLDS, WarningService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.rendering import form_values, is_htmx, page
from tenantcrm.web.scope import WebScope
from tenantcrm.web.settings import settings_sections

CASE_FIELDS = ("customer_id", "trigger", "description", "owner_id", "loan_id", "warning_id")
UPDATE_FIELDS = ("status", "owner_id", "outcome", "lessons")
MEASURE_FIELDS = ("description", "owner_id", "due_on")
# Who can open a case by hand: an early-warning case opens from its flag.
MANUAL_TRIGGERS = tuple(trigger for trigger in TRIGGERS if trigger != "early_warning")
WARNINGS_TARGET = "warning-results"
FLAGGED_LIMIT = 200


def _count(value: str | None) -> int | None:
    """?raised=3 after an evaluation: a small count, or nothing."""
    return int(value) if value and value.isascii() and value.isdigit() and len(value) < 9 else None


def _case_url(scope: WebScope, case_id: object, anchor: str = "") -> str:
    return f"/t/{scope.tenant.slug}/risk/cases/{case_id}" + (f"#{anchor}" if anchor else "")


def threshold_text(rule_kind: str, value: Decimal | None) -> str:
    """A stored threshold as a person types it: 30, 0.5 (never 30.0000)."""
    if value is None or THRESHOLDS.get(rule_kind) is None:
        return ""
    return format(value.normalize(), "f")


async def _render_new_case(
    request: Request,
    scope: WebScope,
    customer_id: str,
    warning_id: str | None,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: InvalidInput | None = None,
) -> Response:
    draft = await RiskCaseService(scope.session, scope.principal).draft(customer_id, warning_id)
    return page(
        request,
        "risk/new_case.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        draft=draft,
        values=values or {},
        errors=errors,
        triggers=MANUAL_TRIGGERS,
    )


async def _render_case(
    request: Request, scope: WebScope, case_id: str, *, status_code: int = 200, **extra: Any
) -> Response:
    service = RiskCaseService(scope.session, scope.principal)
    case_file = await service.case_file(case_id)
    manage = scope.principal.can("risk.manage")
    return page(
        request,
        "risk/case.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        file=case_file,
        today=date.today(),
        owners=await service.owners() if manage else [],
        statuses=STATUSES,
        measure_statuses=MEASURE_STATUSES,
        **{"case_values": {}, "measure_values": {}, "measure_errors": {}, **extra},
    )


def _render_rules(
    request: Request,
    scope: WebScope,
    rules: list[WarningRule],
    *,
    status_code: int = 200,
    values: dict[str, dict[str, Any]] | None = None,
    errors: InvalidInput | None = None,
    saved: bool = False,
) -> Response:
    """The four rules as stored, or as typed when a save was refused."""
    shown = {
        rule.kind: {"threshold": threshold_text(rule.kind, rule.threshold), "enabled": rule.enabled}
        for rule in rules
    } | (values or {})
    return page(
        request,
        "settings/warnings.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        section="warnings",
        sections=settings_sections(scope.principal),
        kinds=[kind for kind in KINDS if kind in shown],
        thresholds=THRESHOLDS,
        values=shown,
        errors=errors,
        saved=saved,
    )


class RiskPages(Controller):
    path = "/t/{slug:str}"

    @get("/risk", name="risk_board")
    async def board(self, request: Request, web_scope: WebScope) -> Response:
        service = RiskCaseService(web_scope.session, web_scope.principal)
        board = await service.board()
        cards = [card for column in board.columns.values() for card in column]
        return page(
            request,
            "risk/board.html",
            slug=web_scope.tenant.slug,
            board=board,
            names=await service.names([card.case.owner_id for card in cards]),
            statuses=STATUSES,
        )

    @get("/risk/cases/new", name="risk_case_new")
    async def new_case(
        self, request: Request, web_scope: WebScope, customer: str = "", warning: str | None = None
    ) -> Response:
        """Opened from a customer's page (?customer=) or from a flag (&warning=): ids only, no PII."""
        return await _render_new_case(request, web_scope, customer, warning)

    @post("/risk/cases", name="risk_case_create")
    async def create_case(self, request: Request, web_scope: WebScope) -> Response:
        values = await form_values(request, CASE_FIELDS)
        customer_id = values.pop("customer_id")
        service = RiskCaseService(web_scope.session, web_scope.principal)
        try:
            case = await service.open_case(customer_id, values)
        except InvalidInput as invalid:
            return await _render_new_case(
                request,
                web_scope,
                customer_id,
                values["warning_id"] or None,
                status_code=422,
                values=values,
                errors=invalid,
            )
        return Redirect(_case_url(web_scope, case.id), status_code=303)

    @get("/risk/cases/{case_id:str}", name="risk_case")
    async def case(self, request: Request, web_scope: WebScope, case_id: str) -> Response:
        return await _render_case(request, web_scope, case_id)

    @post("/risk/cases/{case_id:str}", name="risk_case_update")
    async def update_case(self, request: Request, web_scope: WebScope, case_id: str) -> Response:
        values = await form_values(request, UPDATE_FIELDS)
        service = RiskCaseService(web_scope.session, web_scope.principal)
        try:
            case = await service.update_case(case_id, values)
        except InvalidInput as invalid:
            return await _render_case(
                request, web_scope, case_id, status_code=422, case_values=values, case_errors=invalid
            )
        return Redirect(_case_url(web_scope, case.id), status_code=303)

    @post("/risk/cases/{case_id:str}/measures", name="risk_measure_create")
    async def add_measure(self, request: Request, web_scope: WebScope, case_id: str) -> Response:
        values = await form_values(request, MEASURE_FIELDS)
        service = RiskCaseService(web_scope.session, web_scope.principal)
        try:
            measure = await service.add_measure(case_id, values)
        except InvalidInput as invalid:
            return await _render_case(
                request,
                web_scope,
                case_id,
                status_code=422,
                measure_values=values,
                new_measure_errors=invalid,
            )
        return Redirect(_case_url(web_scope, measure.case_id, f"measure-{measure.id}"), status_code=303)

    @post("/risk/measures/{measure_id:str}", name="risk_measure_update")
    async def update_measure(self, request: Request, web_scope: WebScope, measure_id: str) -> Response:
        """htmx swaps the measure's row; without JS, back to the case page."""
        form = await request.form()
        status = str(form.get("status") or "")
        service = RiskCaseService(web_scope.session, web_scope.principal)
        try:
            measure = await service.update_measure(measure_id, status)
        except InvalidInput as invalid:
            measure = await service.get_measure(measure_id)
            if is_htmx(request):
                return await self._measure_row(request, web_scope, measure, status_code=422, errors=invalid)
            return await _render_case(
                request,
                web_scope,
                str(measure.case_id),
                status_code=422,
                measure_errors={str(measure.id): invalid},
            )
        if is_htmx(request):
            return await self._measure_row(request, web_scope, measure)
        return Redirect(_case_url(web_scope, measure.case_id, f"measure-{measure.id}"), status_code=303)

    async def _measure_row(
        self,
        request: Request,
        scope: WebScope,
        measure: Any,
        *,
        status_code: int = 200,
        errors: InvalidInput | None = None,
    ) -> Response:
        service = RiskCaseService(scope.session, scope.principal)
        case = await service.get_case(measure.case_id)
        return page(
            request,
            "risk/_measure_row.html",
            status_code=status_code,
            slug=scope.tenant.slug,
            measure=measure,
            case=case,
            names=await service.names([measure.owner_id]),
            today=date.today(),
            measure_statuses=MEASURE_STATUSES,
            errors=errors,
        )

    @get("/risk/warnings", name="risk_warnings")
    async def warnings(
        self,
        request: Request,
        web_scope: WebScope,
        kind: str = "",
        raised: str | None = None,
        cleared: str | None = None,
    ) -> Response:
        """A GET filter by rule kind (a code, fine in the URL); htmx swaps only the table."""
        kind = kind if kind in KINDS else ""
        flagged = await WarningService(web_scope.session, web_scope.principal).flagged(
            kind=kind or None, limit=FLAGGED_LIMIT
        )
        partial = is_htmx(request) and request.headers.get("hx-target") == WARNINGS_TARGET
        url = f"/t/{web_scope.tenant.slug}/risk/warnings" + (f"?{urlencode({'kind': kind})}" if kind else "")
        counts = (_count(raised), _count(cleared))
        return page(
            request,
            "risk/_warnings.html" if partial else "risk/warnings.html",
            headers={"HX-Push-Url": url} if partial else None,
            slug=web_scope.tenant.slug,
            flagged=flagged,
            kind=kind,
            kinds=KINDS,
            limit=FLAGGED_LIMIT,
            evaluated=counts if None not in counts else None,
        )

    @post("/risk/warnings/evaluate", name="risk_warnings_evaluate")
    async def evaluate(self, web_scope: WebScope) -> Response:
        """The counts travel in the redirect: numbers only, so a reload does not run the rules again."""
        result = await WarningService(web_scope.session, web_scope.principal).evaluate()
        query = urlencode({"raised": result.raised, "cleared": result.cleared})
        return Redirect(f"/t/{web_scope.tenant.slug}/risk/warnings?{query}", status_code=303)

    @get("/settings/warnings", name="settings_warnings")
    async def rules(self, request: Request, web_scope: WebScope, saved: str | None = None) -> Response:
        rules = await WarningService(web_scope.session, web_scope.principal).rules()
        return _render_rules(request, web_scope, rules, saved=bool(saved))

    @post("/settings/warnings", name="settings_save_warnings")
    async def save_rules(self, request: Request, web_scope: WebScope) -> Response:
        """One row per kind: `<kind>.threshold` and the `<kind>.enabled` box (absent when unticked)."""
        form = await request.form()
        rows = [
            {
                "kind": kind,
                "threshold": str(form.get(f"{kind}.threshold") or ""),
                "enabled": str(form.get(f"{kind}.enabled") or ""),
            }
            for kind in KINDS
        ]
        service = WarningService(web_scope.session, web_scope.principal)
        try:
            await service.update_rules(rows)
        except InvalidInput as invalid:
            shown = {
                row["kind"]: {"threshold": row["threshold"], "enabled": row["enabled"] == "on"}
                for row in rows
            }
            return _render_rules(
                request, web_scope, await service.rules(), status_code=422, values=shown, errors=invalid
            )
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/warnings?saved=1", status_code=303)
