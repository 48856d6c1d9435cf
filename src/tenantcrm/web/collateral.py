"""Collateral pages: add a customer's collateral and record new appraisals, on the customer's tab."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.response import Redirect

from tenantcrm.collateral.service import CollateralService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.customers import render_customer
from tenantcrm.web.rendering import form_values
from tenantcrm.web.scope import WebScope

COLLATERAL_FIELDS = (
    "kind",
    "description",
    "location",
    "region_code",
    "area_m2",
    "appraised_value",
    "appraised_on",
    "appraiser",
    "title_status",
    "lien_order",
)
APPRAISAL_FIELDS = ("appraised_value", "appraised_on", "appraiser")


def _tab(scope: WebScope, customer_id: object) -> str:
    return f"/t/{scope.tenant.slug}/customers/{customer_id}?tab=collateral"


class CollateralPages(Controller):
    path = "/t/{slug:str}"

    @post("/customers/{customer_id:str}/collateral", name="collateral_create")
    async def create(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        values = await form_values(request, COLLATERAL_FIELDS)
        service = CollateralService(web_scope.session, web_scope.principal)
        try:
            collateral = await service.create(customer_id, values)
        except InvalidInput as invalid:
            return await render_customer(
                request,
                web_scope,
                customer_id,
                "collateral",
                status_code=422,
                collateral_values=values,
                collateral_errors=invalid,
            )
        return Redirect(
            f"{_tab(web_scope, collateral.customer_id)}#collateral-{collateral.id}", status_code=303
        )

    @post("/collateral/{collateral_id:str}/appraisals", name="collateral_appraise")
    async def appraise(self, request: Request, web_scope: WebScope, collateral_id: str) -> Response:
        values = await form_values(request, APPRAISAL_FIELDS)
        service = CollateralService(web_scope.session, web_scope.principal)
        try:
            await service.add_appraisal(collateral_id, values)
        except InvalidInput as invalid:
            collateral = await service.get(collateral_id)
            return await render_customer(
                request,
                web_scope,
                str(collateral.customer_id),
                "collateral",
                status_code=422,
                appraisal_values=values,
                appraisal_errors={str(collateral.id): invalid},
            )
        collateral = await service.get(collateral_id)
        return Redirect(
            f"{_tab(web_scope, collateral.customer_id)}#appraisals-{collateral.id}", status_code=303
        )
