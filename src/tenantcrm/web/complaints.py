"""Complaint pages: record one from the customer page, the list by status, work one to resolution."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.auth.service import active_users
from tenantcrm.complaints.service import COMPLAINT_SORTS, STATUSES, ComplaintOrder, ComplaintService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.service import LoanService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.customers import render_customer
from tenantcrm.web.rendering import form_values, page
from tenantcrm.web.scope import WebScope

RECORD_FIELDS = ("kind", "category", "content", "loan_id", "assignee_id")
UPDATE_FIELDS = ("status", "assignee_id", "resolution")
LIST_SIZE = 50
FIRST_DIRECTION = {"respond_by": "asc", "received_at": "desc"}  # a header's first click: urgent, newest


@dataclass(frozen=True)
class ComplaintView:
    """The list's filter and order as they travel in the URL: fixed vocabularies only."""

    status: str = ""
    sort: str = "respond_by"
    direction: str = "asc"

    @classmethod
    def from_values(cls, status: str | None, sort: str | None, direction: str | None) -> ComplaintView:
        field = sort if sort in COMPLAINT_SORTS else "respond_by"
        return cls(
            status=status if status in STATUSES else "",
            sort=field,
            direction=direction if direction in ("asc", "desc") else FIRST_DIRECTION[field],
        )

    @property
    def order(self) -> ComplaintOrder:
        return ComplaintOrder(self.sort, self.direction == "desc")

    def query(self, **extra: str) -> str:
        params = {"status": self.status, **extra}
        if (self.sort, self.direction) != (ComplaintView.sort, ComplaintView.direction):
            params |= {"sort": self.sort, "direction": self.direction}
        return urlencode({k: v for k, v in params.items() if v})

    def sorted_by(self, field: str) -> ComplaintView:
        """The same filter ordered by `field`: its natural direction first, flipped when already so."""
        first = FIRST_DIRECTION[field]
        if self.sort == field and self.direction == first:
            return dataclasses.replace(self, sort=field, direction="desc" if first == "asc" else "asc")
        return dataclasses.replace(self, sort=field, direction=first)


async def _complaint_page(
    request: Request,
    scope: WebScope,
    complaint_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: InvalidInput | None = None,
) -> Response:
    complaint = await ComplaintService(scope.session, scope.principal).get(complaint_id)
    customer = await CustomerService(scope.session, scope.principal).get_customer(complaint.customer_id)
    loan = (
        await LoanService(scope.session, scope.principal).get_loan(complaint.loan_id)
        if complaint.loan_id
        else None
    )
    return page(
        request,
        "complaints/detail.html",
        status_code=422 if errors else 200,
        complaint=complaint,
        customer=customer,
        loan=loan,
        overdue=complaint.overdue(datetime.now(UTC)),
        users=dict(await active_users(scope.session)),
        statuses=STATUSES,
        values=values or {},
        errors=errors,
        slug=scope.tenant.slug,
    )


class ComplaintPages(Controller):
    path = "/t/{slug:str}"

    @get("/complaints", name="complaint_list")
    async def list_page(
        self,
        request: Request,
        web_scope: WebScope,
        status: str | None = None,
        sort: str | None = None,
        direction: str | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> Response:
        """Filtered by a fixed vocabulary (an unknown status shows all), the most urgent first or as
        a header was clicked; keyset pages both ways (a stale cursor shows the first page)."""
        view = ComplaintView.from_values(status, sort, direction)
        service = ComplaintService(web_scope.session, web_scope.principal)
        status_filter = view.status or None
        try:
            result = await service.page_complaints(
                status=status_filter,
                order=view.order,
                after=after,
                before=before,
                first=None if before else LIST_SIZE,
                last=LIST_SIZE if before else None,
            )
        except InvalidInput:
            result = await service.page_complaints(status=status_filter, order=view.order, first=LIST_SIZE)
        base = f"/t/{web_scope.tenant.slug}/complaints"
        return page(
            request,
            "complaints/list.html",
            result=result,
            view=view,
            base=base,
            sortable=COMPLAINT_SORTS,
            statuses=STATUSES,
            users=dict(await active_users(web_scope.session)),
            slug=web_scope.tenant.slug,
        )

    @post("/customers/{customer_id:str}/complaints", name="complaint_create")
    async def record(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        values = await form_values(request, RECORD_FIELDS)
        try:
            complaint = await ComplaintService(web_scope.session, web_scope.principal).record(
                customer_id, values
            )
        except InvalidInput as invalid:
            return await render_customer(
                request,
                web_scope,
                customer_id,
                "complaints",
                status_code=422,
                complaint_values=values,
                complaint_errors=invalid,
            )
        return Redirect(f"/t/{web_scope.tenant.slug}/complaints/{complaint.id}", status_code=303)

    @get("/complaints/{complaint_id:str}", name="complaint_detail")
    async def detail(self, request: Request, web_scope: WebScope, complaint_id: str) -> Response:
        return await _complaint_page(request, web_scope, complaint_id)

    @post("/complaints/{complaint_id:str}", name="complaint_update")
    async def update(self, request: Request, web_scope: WebScope, complaint_id: str) -> Response:
        values: dict[str, Any] = await form_values(request, UPDATE_FIELDS)
        try:
            complaint = await ComplaintService(web_scope.session, web_scope.principal).update(
                complaint_id, values
            )
        except InvalidInput as invalid:
            return await _complaint_page(request, web_scope, complaint_id, values=values, errors=invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/complaints/{complaint.id}", status_code=303)
