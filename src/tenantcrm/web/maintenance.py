"""The answer to a tenant under maintenance: a page for people, a typed GraphQL error for API clients."""

from __future__ import annotations

from litestar import MediaType, Request, Response

from tenantcrm.tenancy.maintenance import TenantMaintenance
from tenantcrm.web.rendering import page

MAINTENANCE_CODE = "TENANT_MAINTENANCE"


def tenant_maintenance(request: Request, exc: TenantMaintenance) -> Response:
    headers = {"Retry-After": str(exc.retry_after)}
    if request.url.path.startswith("/graphql"):
        error = {
            "message": "this institution's data is being upgraded; retry shortly",
            "extensions": {"code": MAINTENANCE_CODE, "retryAfter": exc.retry_after},
        }
        return Response(
            {"data": None, "errors": [error]}, status_code=503, headers=headers, media_type=MediaType.JSON
        )
    if request.headers.get("hx-request") == "true":
        # htmx swaps nothing on a 5xx; a full load shows the page below.
        headers["HX-Refresh"] = "true"
    return page(request, "errors/maintenance.html", status_code=503, headers=headers)
