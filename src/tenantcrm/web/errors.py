"""Error pages: not found, not signed in, suspended tenant, refused permission."""

from __future__ import annotations

from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.collateral.service import CollateralNotFound
from tenantcrm.complaints.service import ComplaintNotFound
from tenantcrm.contacts.service import FollowUpNotFound
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.loans.service import LoanNotFound, RepaymentNotFound
from tenantcrm.retention.erasure_service import ErasureNotFound
from tenantcrm.risk.case_service import MeasureNotFound, RiskCaseNotFound
from tenantcrm.saved_views.service import SavedViewNotFound
from tenantcrm.segments.service import SegmentNotFound
from tenantcrm.tenancy.maintenance import TenantMaintenance
from tenantcrm.web.maintenance import tenant_maintenance
from tenantcrm.web.rendering import page
from tenantcrm.web.scope import NotSignedIn, TenantUnavailable


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/graphql") and "json" not in request.headers.get("accept", "")


def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
    target = f"/t/{exc.slug}/login?next={quote(request.url.path)}"
    if request.headers.get("hx-request") == "true":
        return Response(content="", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def not_found(request: Request, exc: Exception) -> Response:
    if not _wants_html(request):
        return Response({"detail": "Not Found"}, status_code=404, media_type=MediaType.JSON)
    return page(request, "errors/not_found.html", status_code=404)


def tenant_unavailable(request: Request, exc: TenantUnavailable) -> Response:
    return page(request, "errors/suspended.html", status_code=403)


def permission_denied(request: Request, exc: PermissionDenied) -> Response:
    return page(request, "errors/forbidden.html", status_code=403)


EXCEPTION_HANDLERS = {
    NotSignedIn: not_signed_in,
    NotFoundException: not_found,
    CustomerNotFound: not_found,
    CollateralNotFound: not_found,
    LoanNotFound: not_found,
    RepaymentNotFound: not_found,
    FollowUpNotFound: not_found,
    ComplaintNotFound: not_found,
    RiskCaseNotFound: not_found,
    MeasureNotFound: not_found,
    ErasureNotFound: not_found,
    SegmentNotFound: not_found,
    SavedViewNotFound: not_found,
    TenantUnavailable: tenant_unavailable,
    TenantMaintenance: tenant_maintenance,
    PermissionDenied: permission_denied,
}
