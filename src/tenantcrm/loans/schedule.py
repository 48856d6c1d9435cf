"""Exact repayment schedules in Decimal: every instalment rounded to the cent, the last one
absorbing the rounding so the principal sums to the amount lent."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

CENT = Decimal("0.01")
EQUAL_INSTALLMENT = "equal_installment"  # 等额本息
EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
INTEREST_ONLY = "interest_only"  # 先息后本, balloon at the end
BULLET = "bullet"  # 到期一次还本付息
METHODS = (EQUAL_INSTALLMENT, EQUAL_PRINCIPAL, INTEREST_ONLY, BULLET)
MAX_TERM_MONTHS = 480
MAX_AMOUNT = Decimal("1000000000000")


class InvalidTerms(ValueError):
    """Loan terms no schedule can be made from; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Installment:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    payment: Decimal
    balance_after: Decimal


@dataclass(frozen=True, slots=True)
class Schedule:
    installments: tuple[Installment, ...]

    @property
    def total_interest(self) -> Decimal:
        return sum((i.interest for i in self.installments), Decimal("0.00"))

    @property
    def total_payment(self) -> Decimal:
        return sum((i.payment for i in self.installments), Decimal("0.00"))

    @property
    def total_principal(self) -> Decimal:
        return sum((i.principal for i in self.installments), Decimal("0.00"))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(start: date, months: int) -> date:
    """The same day `months` later; the 31st becomes the month's last day (Jan 31 → Feb 28)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def check_terms(amount: Decimal, annual_rate: Decimal, term_months: int, method: str) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0 or amount >= MAX_AMOUNT:
        raise InvalidTerms("amount", "amount must be more than 0 and less than 1,000,000,000,000")
    if amount != cents(amount):
        raise InvalidTerms("amount", "amount has more than two decimals")
    if not isinstance(annual_rate, Decimal) or not annual_rate.is_finite() or not 0 <= annual_rate < 1:
        raise InvalidTerms("annual_rate", "annual rate is a fraction from 0 up to 1 (0.049 for 4.9%)")
    if annual_rate != annual_rate.quantize(Decimal("0.000001")):
        raise InvalidTerms("annual_rate", "annual rate has more than six decimals")
    if not 1 <= term_months <= MAX_TERM_MONTHS:
        raise InvalidTerms("term_months", f"term must be 1 to {MAX_TERM_MONTHS} months")
    if method not in METHODS:
        raise InvalidTerms("method", "unknown repayment method")


def build_schedule(
    amount: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: str,
    start_date: date,
    first_due_date: date | None = None,
) -> Schedule:
    """The schedule of a loan disbursed on `start_date`; instalment k falls due k months after
    the first due date (by default one month after the start)."""
    check_terms(amount, annual_rate, term_months, method)

    def due(number: int) -> date:
        # Counted from the anchor each time, so a 31st stays the month's last day throughout.
        return add_months(first_due_date, number - 1) if first_due_date else add_months(start_date, number)

    with localcontext() as ctx:
        ctx.prec = 40  # (1 + r)^n over 480 months keeps every cent exact before rounding
        rate = annual_rate / 12
        if method == BULLET:
            interest = cents(amount * annual_rate * term_months / 12)
            return Schedule(
                (Installment(1, due(term_months), amount, interest, amount + interest, Decimal("0.00")),)
            )
        level = _level_payment(amount, rate, term_months) if method == EQUAL_INSTALLMENT else None
        even_principal = cents(amount / term_months)
        rows = _amortise(amount, rate, term_months, method, due, level, even_principal)
        while _repaid_early(rows) and (level or even_principal) > CENT:
            # Rounding up every month (and interest rounding down to nothing on tiny balances)
            # would repay a tiny loan before its last month: a cent less each month, and the last
            # instalment takes the remainder. Real loans never get here.
            level = level - CENT if level is not None else None
            even_principal = even_principal - CENT if level is None else even_principal
            rows = _amortise(amount, rate, term_months, method, due, level, even_principal)
    return Schedule(tuple(rows))


def _repaid_early(rows: list[Installment]) -> bool:
    return any(row.balance_after == 0 for row in rows[:-1])


def _amortise(
    amount: Decimal,
    rate: Decimal,
    n: int,
    method: str,
    due: Callable[[int], date],
    level: Decimal | None,
    even_principal: Decimal,
) -> list[Installment]:
    rows: list[Installment] = []
    balance = amount
    for number in range(1, n + 1):
        interest = cents(balance * rate)
        if number == n:
            principal = balance  # the last instalment absorbs every rounding before it
        elif method == EQUAL_INSTALLMENT:
            principal = max(min(level - interest, balance), Decimal("0.00"))  # type: ignore[operator]
        elif method == EQUAL_PRINCIPAL:
            principal = min(even_principal, balance)
        else:  # interest-only: principal all at the end
            principal = Decimal("0.00")
        balance -= principal
        rows.append(Installment(number, due(number), principal, interest, principal + interest, balance))
    return rows


def _level_payment(amount: Decimal, rate: Decimal, n: int) -> Decimal:
    """The 等额本息 (equal instalment) payment, to the cent."""
    if rate == 0:
        return cents(amount / n)
    growth = (1 + rate) ** n
    return cents(amount * rate * growth / (growth - 1))
