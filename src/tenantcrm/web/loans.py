"""Loan pages: the calculator officers use with a customer, every method side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from litestar import Controller, Request, Response, get

from tenantcrm.customers.inputs import parse_money
from tenantcrm.loans.schedule import METHODS, InvalidTerms, Schedule, build_schedule
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput
from tenantcrm.web.rendering import is_htmx, page
from tenantcrm.web.scope import WebScope

RESULTS_TARGET = "calculator-results"
WAN = Decimal(10000)


@dataclass(frozen=True)
class Terms:
    amount: Decimal
    annual_rate: Decimal
    term_months: int
    start_date: date


def parse_terms(amount: str, rate: str, term: str, start: str) -> Terms:
    """Form text as officers type it: "300万" or "3,000,000" yuan, "4.9" percent, months."""
    errors: list[FieldError] = []
    text = amount.strip().replace("元", "")
    try:
        value = (
            (parse_money(text[:-1]) * WAN).quantize(Decimal("0.01"))
            if text.endswith(("万", "w", "W"))
            else parse_money(text)
        )
    except ValueError:
        errors.append(
            FieldError("amount", "invalid_amount", N_("Enter an amount in yuan, e.g. 3000000 or 300万."))
        )
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


class LoanPages(Controller):
    path = "/t/{slug:str}/loans"

    @get("/calculator", name="loan_calculator")
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
