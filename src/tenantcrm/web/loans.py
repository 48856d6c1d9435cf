"""Loan pages: the portfolio, a loan with its schedule, repayments and class, new loans, the calculator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.collateral.models import Collateral
from tenantcrm.collateral.service import CollateralService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.inputs import CHANNELS, FLAGS, parse_loan_amount, validate_loan
from tenantcrm.loans.ledger import BUCKETS, CLASSES
from tenantcrm.loans.models import InstallmentRow, Loan
from tenantcrm.loans.schedule import METHODS, InvalidTerms, Schedule, build_schedule
from tenantcrm.loans.service import LOAN_SORTS, STATUSES, LoanFilter, LoanService
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput
from tenantcrm.web.customers import render_customer
from tenantcrm.web.rendering import is_htmx, page
from tenantcrm.web.scope import WebScope

RESULTS_TARGET = "calculator-results"
PORTFOLIO_TARGET = "loan-results"
PREVIEW_TARGET = "loan-preview"
PORTFOLIO_PAGE_SIZE = 25
DUE_SOON_DAYS = 7
LOAN_FIELDS = ("product", "amount", "annual_rate", "term_months", "method", "start_date", "first_due_date")
REPAYMENT_FIELDS = ("amount", "paid_on", "channel", "reference")


@dataclass(frozen=True)
class Terms:
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    start_date: date


def parse_terms(amount: str, rate: str, term: str, start: str) -> Terms:
    """Form text as officers type it: "300万" or "3,000,000" yuan, "4.9" percent, months."""
    errors: list[FieldError] = []
    try:
        value = parse_loan_amount(amount)
    except InvalidInput as invalid:  # bounded like a loan's amount, in the same words
        errors.extend(invalid.errors)
        value = Decimal(0)
    try:
        annual_rate = Decimal(rate.strip().rstrip("%")) / 100
    except InvalidOperation:
        errors.append(FieldError("rate", "invalid_rate", N_("Enter the annual rate in percent, e.g. 4.9.")))
        annual_rate = Decimal(0)
    months = int(term) if term.strip().isdigit() else 0
    try:
        start_date = date.fromisoformat(start.strip())
    except ValueError:
        errors.append(FieldError("start", "invalid_date", N_("Enter a date as YYYY-MM-DD.")))
        start_date = date.today()
    if errors:
        raise InvalidInput(errors)
    return Terms(value, annual_rate, months, start_date)


def _day(value: str | None) -> date:
    """?as_of=YYYY-MM-DD, today when absent or not a date."""
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return date.today()


def row_state(row: InstallmentRow, as_of: date) -> str:
    """How the schedule row is coloured, like officers' sheets: paid muted, overdue red, due soon amber."""
    if row.payment == 0 or (row.paid_on is not None and row.paid_on <= as_of):
        return "paid"
    if row.due_date < as_of:
        return "overdue"
    if row.due_date <= as_of + timedelta(days=DUE_SOON_DAYS):
        return "due-soon"
    return "upcoming"


async def _loan_form(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The new-loan form as typed (to show again) and as the service takes it. The rate box is in
    percent, so a bare "4.9" is sent as "4.9%"."""
    form = await request.form()
    shown: dict[str, Any] = {name: str(form.get(name) or "") for name in LOAN_FIELDS}
    shown["collateral_ids"] = [str(value) for value in form.getall("collateral_ids", [])]
    data = dict(shown)
    rate = shown["annual_rate"].strip()
    if rate and not rate.endswith("%"):
        data["annual_rate"] = f"{rate}%"
    return shown, data


def _preview(data: dict[str, Any]) -> Schedule:
    """The schedule of the typed terms, checked as a new loan's would be (the product may still be empty)."""
    values = validate_loan({**data, "product": data.get("product") or "-", "collateral_ids": None})
    try:
        return build_schedule(
            values["amount"],
            values["annual_rate"],
            values["term_months"],
            values["method"],
            values["start_date"],
            values["first_due_date"],
        )
    except InvalidTerms as invalid:
        raise InvalidInput(
            [FieldError(invalid.field, "invalid_terms", TERM_MESSAGES[invalid.field])]
        ) from None


async def _render_loan(
    request: Request,
    scope: WebScope,
    loan_id: str,
    *,
    as_of: date | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The loan page: terms, class and suggestion, arrears and payoff as of a day, schedule,
    repayments, and the forms the principal may use (a refused one comes back in `extra`)."""
    service = LoanService(scope.session, scope.principal)
    loan = await service.get_loan(loan_id)
    as_of = as_of or date.today()
    customer = await CustomerService(scope.session, scope.principal).get_customer(loan.customer_id)
    suggestion = await service.suggestion(loan, as_of)
    schedule = await service.schedule(loan.id)
    return page(
        request,
        "loans/detail.html",
        status_code=status_code,
        slug=scope.tenant.slug,
        loan=loan,
        customer=customer,
        as_of=as_of,
        today=date.today(),
        suggestion=suggestion,
        arrears=suggestion.arrears,
        payoff=await service.payoff_amount(loan, as_of) if loan.status == "active" else None,
        ltv=(await service.loan_to_value([loan]))[loan.id],
        collateral=await _collateral_of(scope, service, loan),
        schedule=schedule,
        row_states={row.number: row_state(row, as_of) for row in schedule},
        repayments=await service.repayments(loan.id),
        history=await service.classification_history(loan.id),
        classes=CLASSES,
        flags=FLAGS,
        channels=CHANNELS,
        **{"repayment_values": {}, "reverse_errors": {}, "classify_values": {}, **extra},
    )


async def _collateral_of(scope: WebScope, service: LoanService, loan: Loan) -> list[Collateral]:
    """The loan's collateral, found from the customer's side: LoanService.collateral_for_loans
    cannot build its query (its scope join is ambiguous between loans and collateral)."""
    items = await CollateralService(scope.session, scope.principal).list_for_customer(loan.customer_id)
    linked = await service.loans_for_collateral([item.id for item in items]) if items else {}
    return [item for item in items if any(other.id == loan.id for other in linked.get(item.id, []))]


def _loan_url(scope: WebScope, loan: Loan | Any, anchor: str = "") -> str:
    return f"/t/{scope.tenant.slug}/loans/{loan.id}" + (f"#{anchor}" if anchor else "")


@dataclass(frozen=True)
class PortfolioView:
    """The portfolio's filters as they travel in the URL: fixed vocabularies only."""

    status: str = ""
    bucket: str = ""
    classification: str = ""
    sort: str = "created_at"
    direction: str = "desc"

    @classmethod
    def from_values(
        cls,
        status: str | None,
        bucket: str | None,
        classification: str | None,
        sort: str | None = None,
        direction: str | None = None,
    ) -> PortfolioView:
        return cls(
            status=status if status in STATUSES else "",
            bucket=bucket if bucket in BUCKETS else "",
            classification=classification if classification in CLASSES else "",
            sort=sort if sort in LOAN_SORTS else "created_at",
            direction="asc" if direction == "asc" else "desc",
        )

    def query(self, **extra: str) -> str:
        params = {
            "status": self.status,
            "bucket": self.bucket,
            "classification": self.classification,
            **extra,
        }
        if (self.sort, self.direction) != ("created_at", "desc"):
            params |= {"sort": self.sort, "direction": self.direction}
        return urlencode({k: v for k, v in params.items() if v})

    def sorted_by(self, field: str) -> PortfolioView:
        """The same filters ordered by `field`: descending first, flipped when already so."""
        direction = "asc" if self.sort == field and self.direction == "desc" else "desc"
        return dataclasses.replace(self, sort=field, direction=direction)


class LoanPages(Controller):
    path = "/t/{slug:str}"

    @get("/loans", name="loan_list")
    async def portfolio(
        self,
        request: Request,
        web_scope: WebScope,
        status: str | None = None,
        bucket: str | None = None,
        classification: str | None = None,
        sort: str | None = None,
        direction: str | None = None,
        after: str | None = None,
    ) -> Response:
        """A GET form: the filters are codes, so they may sit in the URL and be bookmarked."""
        view = PortfolioView.from_values(status, bucket, classification, sort, direction)
        service = LoanService(web_scope.session, web_scope.principal)
        flt = LoanFilter(
            status=view.status or None, bucket=view.bucket or None, classification=view.classification or None
        )
        order: dict[str, Any] = {"sort": view.sort, "descending": view.direction == "desc"}
        try:
            result = await service.list_loans(flt, first=PORTFOLIO_PAGE_SIZE, after=after, **order)
        except InvalidInput:  # a stale or edited cursor: the first page of the same view
            after = None
            result = await service.list_loans(flt, first=PORTFOLIO_PAGE_SIZE, **order)
        base = f"/t/{web_scope.tenant.slug}/loans"
        partial = is_htmx(request) and request.headers.get("hx-target") == PORTFOLIO_TARGET
        push = f"{base}?{view.query(after=after or '')}".rstrip("?")
        return page(
            request,
            "loans/_portfolio.html" if partial else "loans/list.html",
            headers={"HX-Push-Url": push} if partial else None,
            slug=web_scope.tenant.slug,
            view=view,
            result=result,
            after=after,
            next_url=f"{base}?{view.query(after=result.end_cursor or '')}" if result.has_next_page else None,
            base=base,
            sortable=LOAN_SORTS,
            statuses=STATUSES,
            buckets=BUCKETS,
            classes=CLASSES,
        )

    @get("/loans/{loan_id:str}", name="loan_detail")
    async def detail(
        self, request: Request, web_scope: WebScope, loan_id: str, as_of: str | None = None
    ) -> Response:
        return await _render_loan(request, web_scope, loan_id, as_of=_day(as_of))

    @post("/customers/{customer_id:str}/loans", name="loan_create")
    async def create(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        shown, data = await _loan_form(request)
        service = LoanService(web_scope.session, web_scope.principal)
        try:
            loan = await service.create_loan(customer_id, data)
        except InvalidInput as invalid:
            return await render_customer(
                request,
                web_scope,
                customer_id,
                "loans",
                status_code=422,
                loan_values=shown,
                loan_errors=invalid,
            )
        return Redirect(_loan_url(web_scope, loan), status_code=303)

    @post("/customers/{customer_id:str}/loans/preview", name="loan_preview")
    async def preview(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        """Only computes: htmx gets the schedule alone; without JS, the loans tab with the form kept."""
        shown, data = await _loan_form(request)
        schedule = errors = None
        try:
            schedule = _preview(data)
        except InvalidInput as invalid:
            errors = invalid
        context = {"preview": schedule, "preview_errors": errors, "preview_method": data["method"]}
        if is_htmx(request) and request.headers.get("hx-target") == PREVIEW_TARGET:
            await CustomerService(web_scope.session, web_scope.principal).get_customer(customer_id)
            return page(request, "loans/_preview.html", status_code=422 if errors else 200, **context)
        return await render_customer(
            request,
            web_scope,
            customer_id,
            "loans",
            status_code=422 if errors else 200,
            loan_values=shown,
            **context,
        )

    @post("/loans/{loan_id:str}/repayments", name="loan_repay")
    async def repay(self, request: Request, web_scope: WebScope, loan_id: str) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in REPAYMENT_FIELDS}
        service = LoanService(web_scope.session, web_scope.principal)
        try:
            # A savepoint: a refused repayment must leave nothing behind, whatever the service flushed.
            async with web_scope.session.begin_nested():
                await service.record_repayment(loan_id, values)
        except InvalidInput as invalid:
            return await _render_loan(
                request,
                web_scope,
                loan_id,
                status_code=422,
                repayment_values=values,
                repayment_errors=invalid,
            )
        loan = await service.get_loan(loan_id)
        return Redirect(_loan_url(web_scope, loan, "repayments"), status_code=303)

    @post("/loans/{loan_id:str}/repayments/{repayment_id:str}/reverse", name="loan_reverse_repayment")
    async def reverse(
        self, request: Request, web_scope: WebScope, loan_id: str, repayment_id: str
    ) -> Response:
        form = await request.form()
        service = LoanService(web_scope.session, web_scope.principal)
        try:
            repayment = await service.reverse_repayment(repayment_id, form.get("reason"))
        except InvalidInput as invalid:
            return await _render_loan(
                request,
                web_scope,
                loan_id,
                status_code=422,
                reverse_errors={repayment_id: invalid},
                reverse_reason=str(form.get("reason") or ""),
            )
        return Redirect(f"/t/{web_scope.tenant.slug}/loans/{repayment.loan_id}#repayments", status_code=303)

    @post("/loans/{loan_id:str}/classify", name="loan_classify")
    async def classify(self, request: Request, web_scope: WebScope, loan_id: str) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in ("classification", "reason")}
        service = LoanService(web_scope.session, web_scope.principal)
        try:
            await service.classify(loan_id, values["classification"], values["reason"])
        except InvalidInput as invalid:
            return await _render_loan(
                request, web_scope, loan_id, status_code=422, classify_values=values, classify_errors=invalid
            )
        loan = await service.get_loan(loan_id)
        return Redirect(_loan_url(web_scope, loan, "classification"), status_code=303)

    @post("/loans/{loan_id:str}/flags", name="loan_flags")
    async def flags(self, request: Request, web_scope: WebScope, loan_id: str) -> Response:
        form = await request.form()
        chosen = [str(value) for value in form.getall("flags", [])]
        service = LoanService(web_scope.session, web_scope.principal)
        try:
            loan = await service.set_flags(loan_id, chosen)
        except InvalidInput as invalid:
            return await _render_loan(request, web_scope, loan_id, status_code=422, flag_errors=invalid)
        return Redirect(_loan_url(web_scope, loan, "classification"), status_code=303)

    @get("/loans/calculator", name="loan_calculator")
    async def calculator(
        self,
        request: Request,
        web_scope: WebScope,
        amount: str = "",
        rate: str = "",
        term: str = "",
        start: str = "",
        method: str = "equal_installment",
    ) -> Response:
        """A plain GET form: the terms (no personal data) may sit in the URL and be bookmarked."""
        values = {
            "amount": amount,
            "rate": rate,
            "term": term or "120",
            "start": start or date.today().isoformat(),
            "method": method if method in METHODS else METHODS[0],
        }
        schedules: dict[str, Schedule] = {}
        errors = None
        if amount:
            try:
                terms = parse_terms(amount, rate, values["term"], values["start"])
                schedules = {
                    name: build_schedule(
                        terms.amount, terms.annual_rate, terms.term_months, name, terms.start_date
                    )
                    for name in METHODS
                }
            except InvalidInput as invalid:
                errors = invalid
            except InvalidTerms as invalid:
                errors = InvalidInput(
                    [FieldError(invalid.field, "invalid_terms", TERM_MESSAGES[invalid.field])]
                )
        partial = is_htmx(request) and request.headers.get("hx-target") == RESULTS_TARGET
        return page(
            request,
            "loans/_results.html" if partial else "loans/calculator.html",
            status_code=422 if errors else 200,
            slug=web_scope.tenant.slug,
            values=values,
            errors=errors,
            schedules=schedules,
            methods=METHODS,
        )


TERM_MESSAGES = {
    "amount": N_("The amount must be more than 0 with at most two decimals."),
    "annual_rate": N_("The annual rate must be from 0 up to 100 percent, with at most four decimals."),
    "term_months": N_("The term must be 1 to 480 months."),
    "method": N_("Choose one of the listed values."),
}
