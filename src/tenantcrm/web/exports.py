"""Export downloads: the customer list and the loan portfolio as .xlsx, with the lists' own filters."""

from __future__ import annotations

from datetime import date

from litestar import Controller, Request, Response, get

from tenantcrm.customers.service import CustomerFilter, CustomerOrder
from tenantcrm.exports.service import ExportService
from tenantcrm.loans.service import LoanFilter
from tenantcrm.settings import Settings
from tenantcrm.web.customers import ListView
from tenantcrm.web.imports import XLSX, attachment
from tenantcrm.web.loans import PortfolioView
from tenantcrm.web.rendering import gettext_for, request_locale
from tenantcrm.web.scope import WebScope
from tenantcrm.web.sealed import unseal


def _download(content: bytes, name: str) -> Response:
    return Response(
        content=content,
        media_type=XLSX,
        headers={"Content-Disposition": attachment(name), "Cache-Control": "no-store"},
    )


class ExportPages(Controller):
    path = "/t/{slug:str}"

    @get("/customers/export.xlsx", name="customer_export")
    async def customers(
        self,
        request: Request,
        web_scope: WebScope,
        q: str | None = None,
        risk_level: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        direction: str | None = None,
    ) -> Response:
        """The customer list as it is filtered and sorted on its page (the search term sealed)."""
        service = ExportService(web_scope.session, web_scope.principal, web_scope.cipher)
        service.check_can_export()
        settings: Settings = request.app.state.settings
        audience = f"{web_scope.tenant.id}|{web_scope.principal.user_id}"
        sealed = unseal(settings.secret_key, audience, q) if q else None
        view = ListView.from_values(
            {
                "search": str(sealed.get("search", "")) if sealed else "",
                "risk_level": risk_level,
                "status": status,
                "sort": sort,
                "direction": direction,
            }
        )
        export = await service.customers(
            CustomerFilter(view.search or None, view.risk_level or None, view.status or None),
            CustomerOrder(view.sort, view.direction == "desc"),
            gettext_for(request),
            request_locale(request),
        )
        return _download(export.content, f"customers-{date.today():%Y%m%d}.xlsx")

    @get("/loans/export.xlsx", name="loan_export")
    async def loans(
        self,
        request: Request,
        web_scope: WebScope,
        status: str | None = None,
        bucket: str | None = None,
        classification: str | None = None,
    ) -> Response:
        """The loan portfolio with its filters, arrears as of today."""
        service = ExportService(web_scope.session, web_scope.principal)
        service.check_can_export()
        view = PortfolioView.from_values(status, bucket, classification)
        flt = LoanFilter(
            status=view.status or None, bucket=view.bucket or None, classification=view.classification or None
        )
        export = await service.loans(flt, date.today(), gettext_for(request), request_locale(request))
        return _download(export.content, f"loans-{date.today():%Y%m%d}.xlsx")
