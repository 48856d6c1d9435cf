"""The dashboard: portfolio figures as a page (tables without JS) and as JSON for the live charts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from litestar import Controller, MediaType, Request, Response, get

from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.regions import region_name
from tenantcrm.dashboard.service import Dashboard, DashboardService, Slice
from tenantcrm.exports.service import VALUE_LABELS
from tenantcrm.messages import N_
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.web.rendering import gettext_for, page, request_locale
from tenantcrm.web.scope import WebScope

FLAGGED_SHOWN = 8
NO_GRADE = N_("Ungraded")
NO_REGION = N_("No region")
DISBURSED = N_("Disbursed")
OVERDUE = N_("Overdue at month end")
CUSTOMERS = N_("Customers")
OUTSTANDING = N_("Outstanding")


@dataclass(frozen=True)
class Labels:
    """Codes in the reader's language, for the tables and the charts alike."""

    gettext: Callable[[str], str]
    locale: str

    def grade(self, key: str) -> str:
        return self.gettext(NO_GRADE) if key == "none" else key

    def classification(self, key: str) -> str:
        return self.gettext(VALUE_LABELS.get(key, key))

    def region(self, key: str) -> str:
        return region_name(key, self.locale) or self.gettext(NO_REGION)


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _slice(part: Slice, label: str) -> dict[str, Any]:
    return {"key": part.key, "label": label, "count": part.count, "amount": _money(part.amount)}


def dashboard_json(board: Dashboard, labels: Labels) -> dict[str, Any]:
    """Money as two-decimal strings (never float); the chart script turns them into numbers to draw."""
    kpis = board.kpis
    _ = labels.gettext
    return {
        "asOf": board.as_of.isoformat(),
        "kpis": {
            "customers": kpis.customers,
            "outstanding": _money(kpis.outstanding),
            "overdue": _money(kpis.overdue),
            "overdueRate": None if kpis.overdue_rate is None else str(kpis.overdue_rate),
            "newLoansThisMonth": kpis.new_loans_this_month,
            "disbursedThisMonth": _money(kpis.disbursed_this_month),
            "followUpsDueToday": kpis.follow_ups_due_today,
            "flaggedCustomers": kpis.flagged_customers,
        },
        "creditGrades": [
            {"key": s.key, "label": labels.grade(s.key), "count": s.count} for s in board.credit_grades
        ],
        "classes": [_slice(s, labels.classification(s.key)) for s in board.classes],
        "regions": [_slice(s, labels.region(s.key)) for s in board.regions],
        "trend": [
            {"month": p.month, "disbursed": _money(p.disbursed), "overdue": _money(p.overdue)}
            for p in board.trend
        ],
        "series": {
            "disbursed": _(DISBURSED),
            "overdue": _(OVERDUE),
            "customers": _(CUSTOMERS),
            "outstanding": _(OUTSTANDING),
        },
    }


def _labels(request: Request) -> Labels:
    return Labels(gettext_for(request), request_locale(request))


class DashboardPages(Controller):
    path = "/t/{slug:str}"

    @get("/dashboard", name="dashboard")
    async def dashboard(self, request: Request, web_scope: WebScope) -> Response:
        board = await DashboardService(web_scope.session, web_scope.principal).dashboard()
        day = await ContactService(web_scope.session, web_scope.principal).my_day(board.as_of)
        flagged = await WarningService(web_scope.session, web_scope.principal).flagged(limit=FLAGGED_SHOWN)
        labels = _labels(request)
        return page(
            request,
            "dashboard/index.html",
            slug=web_scope.tenant.slug,
            board=board,
            labels=labels,
            # The charts' first drawing uses these figures; the JSON endpoint serves only the refreshes.
            chart_data=dashboard_json(board, labels),
            my_day=day,
            flagged=flagged,
        )

    @get("/dashboard.json", name="dashboard_data", media_type=MediaType.JSON)
    async def data(self, request: Request, web_scope: WebScope) -> Response[dict[str, Any]]:
        board = await DashboardService(web_scope.session, web_scope.principal).dashboard()
        return Response(
            dashboard_json(board, _labels(request)),
            media_type=MediaType.JSON,
            headers={"Cache-Control": "no-store", "Vary": "Cookie"},
        )
