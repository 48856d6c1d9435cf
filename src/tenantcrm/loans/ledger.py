"""A loan's repayments replayed over its schedule: allocations, arrears, payoff and risk classification."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from tenantcrm.loans.schedule import BULLET, METHODS, Schedule, build_schedule, cents

ZERO = Decimal("0.00")
BUCKETS = ("current", "1-30", "31-60", "61-90", "91-180", "181-360", "360+")
CLASSES = ("normal", "special_mention", "substandard", "doubtful", "loss")  # 正常 关注 次级 可疑 损失
_BUCKET_UPPER_DAYS = (0, 30, 60, 90, 180, 360)


@dataclass(frozen=True, slots=True)
class Payment:
    """A repayment that counts; a reversed one is simply left out of the replay."""

    id: Any
    paid_on: date
    amount: Decimal

    def __post_init__(self) -> None:
        amount = self.amount
        if (
            not isinstance(amount, Decimal)
            or not amount.is_finite()
            or amount <= 0
            or amount != cents(amount)
        ):
            raise ValueError("a payment is a positive Decimal amount in cents")


@dataclass(slots=True)
class Line:
    """One instalment as it stands after the replay; `paid_on` is the date it first became fully
    paid (None while anything is owed, and for a line that never owed anything)."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    paid_on: date | None = None

    @property
    def payment(self) -> Decimal:
        return self.principal + self.interest

    @property
    def outstanding(self) -> Decimal:
        return self.payment - self.principal_paid - self.interest_paid


@dataclass(frozen=True, slots=True)
class Allocation:
    """The part of one payment that went to one instalment."""

    payment_id: Any
    paid_on: date
    number: int
    interest: Decimal
    principal: Decimal


@dataclass(slots=True)
class Ledger:
    lines: list[Line]
    allocations: list[Allocation] = field(default_factory=list)
    settled_on: date | None = None  # the date of the payment that left nothing owing

    @property
    def outstanding_principal(self) -> Decimal:
        """The amount lent less the principal repaid (the lines' principal always sums to the amount)."""
        return sum((line.principal - line.principal_paid for line in self.lines), ZERO)


class Overpayment(ValueError):
    """A payment larger than everything it could pay; `maximum` is the most it could have been."""

    def __init__(self, payment_id: Any, maximum: Decimal) -> None:
        super().__init__(f"payment {payment_id} is more than the {maximum} it could pay")
        self.payment_id = payment_id
        self.maximum = maximum


def replay(schedule: Schedule, annual_rate: Decimal, method: str, payments: Sequence[Payment]) -> Ledger:
    """The loan after `payments` (stable-sorted by date), applied one by one over the contractual
    schedule. Each payment pays, in turn:

    1. the instalments due on or before its date, oldest first, each interest then principal;
    2. the instalment in progress (the first due after its date), interest in full then principal:
       by convention the current period's interest is charged in full on early repayment;
    3. a principal prepayment, moved onto the instalment in progress: the later instalments are
       re-amortised over their own numbers and due dates, or removed when it covers their principal.

    The lines' principal always sums to the amount lent. A payment beyond what settles the loan
    raises Overpayment.
    """
    if method not in METHODS:
        raise ValueError(f"unknown repayment method {method!r}")
    if method == BULLET and len(schedule.installments) != 1:
        raise ValueError("a bullet loan has a single instalment")
    ledger = Ledger(
        [Line(row.number, row.due_date, row.principal, row.interest) for row in schedule.installments]
    )
    for payment in sorted(payments, key=lambda p: p.paid_on):
        _apply(ledger, payment, annual_rate, method)
    return ledger


def _apply(ledger: Ledger, payment: Payment, annual_rate: Decimal, method: str) -> None:
    day = payment.paid_on
    maximum = payoff_amount(ledger, day)
    if payment.amount > maximum:
        raise Overpayment(payment.id, maximum)
    left = cents(payment.amount)
    lines = ledger.lines
    for index, line in enumerate(lines):
        if left == 0:
            break
        interest = min(left, line.interest - line.interest_paid)
        principal = min(left - interest, line.principal - line.principal_paid)
        left -= interest + principal
        if line.due_date > day and left > 0:
            principal += left
            _prepay(ledger, index, left, annual_rate, method)
            left = ZERO
        line.interest_paid += interest
        line.principal_paid += principal
        if line.paid_on is None and line.payment > 0 and line.outstanding == 0:
            line.paid_on = day
        if interest or principal:
            ledger.allocations.append(Allocation(payment.id, day, line.number, interest, principal))
        if line.due_date > day:
            break
    if ledger.settled_on is None and all(line.outstanding == 0 for line in lines):
        ledger.settled_on = day


def _prepay(ledger: Ledger, index: int, amount: Decimal, annual_rate: Decimal, method: str) -> None:
    """Move `amount` of principal from the lines after `index` onto it (the caller marks it paid)."""
    current, later = ledger.lines[index], ledger.lines[index + 1 :]
    remaining = sum((line.principal for line in later), ZERO)
    # Never more than `remaining`: the payment was checked against the payoff amount.
    current.principal += amount
    if amount == remaining:
        del ledger.lines[index + 1 :]
        return
    rebuilt = build_schedule(remaining - amount, annual_rate, len(later), method, current.due_date)
    for line, row in zip(later, rebuilt.installments, strict=True):
        line.principal, line.interest = row.principal, row.interest


def payoff_amount(ledger: Ledger, on: date) -> Decimal:
    """The most a new payment dated `on` may be, the amount that settles the loan: everything due by
    then, the instalment in progress's interest in full, and all principal still owed."""
    total = ZERO
    for index, line in enumerate(ledger.lines):
        if line.due_date <= on:
            total += line.outstanding
        else:
            total += line.interest - line.interest_paid
            total += sum((rest.principal - rest.principal_paid for rest in ledger.lines[index:]), ZERO)
            break
    return total


@dataclass(frozen=True, slots=True)
class Arrears:
    as_of: date
    days_past_due: int
    overdue_principal: Decimal
    overdue_interest: Decimal
    outstanding_principal: Decimal
    bucket: str
    next_due: Line | None

    @property
    def overdue_amount(self) -> Decimal:
        return self.overdue_principal + self.overdue_interest


def arrears(ledger: Ledger, as_of: date) -> Arrears:
    """The loan's arrears at the end of `as_of`, counting only payments made by then. An instalment is
    overdue from the day after its due date until fully paid. `next_due` is the first instalment due
    on or after `as_of` not fully paid by then, with its paid parts as of that date; its principal and
    interest are as the whole replay left them (a later prepayment may have changed them)."""
    paid: dict[int, tuple[Decimal, Decimal]] = {}
    for allocation in ledger.allocations:
        if allocation.paid_on <= as_of:
            interest, principal = paid.get(allocation.number, (ZERO, ZERO))
            paid[allocation.number] = (interest + allocation.interest, principal + allocation.principal)
    oldest: date | None = None
    overdue_principal = overdue_interest = ZERO
    next_due: Line | None = None
    for line in ledger.lines:
        interest_paid, principal_paid = paid.get(line.number, (ZERO, ZERO))
        unpaid_interest, unpaid_principal = line.interest - interest_paid, line.principal - principal_paid
        if line.due_date < as_of:
            if unpaid_interest or unpaid_principal:
                oldest = oldest or line.due_date
                overdue_interest += unpaid_interest
                overdue_principal += unpaid_principal
        elif next_due is None and (unpaid_interest or unpaid_principal):
            if line.paid_on is None or line.paid_on > as_of:
                next_due = Line(
                    line.number, line.due_date, line.principal, line.interest, principal_paid, interest_paid
                )
    days = (as_of - oldest).days if oldest else 0
    repaid = sum((principal for _, principal in paid.values()), ZERO)
    outstanding = sum((line.principal for line in ledger.lines), ZERO) - repaid
    return Arrears(as_of, days, overdue_principal, overdue_interest, outstanding, bucket_for(days), next_due)


def bucket_for(days_past_due: int) -> str:
    """The ageing bucket of a number of days past due: 0 is current, then 1-30 … 181-360, then 360+."""
    if days_past_due < 0:
        raise ValueError("days past due cannot be negative")
    for upper, bucket in zip(_BUCKET_UPPER_DAYS, BUCKETS, strict=False):
        if days_past_due <= upper:
            return bucket
    return BUCKETS[-1]


@dataclass(frozen=True, slots=True)
class Rule:
    """A classification suggested from a number of days past due, or from a flag on the loan."""

    classification: str
    min_days_past_due: int | None = None
    flag: str | None = None

    def __post_init__(self) -> None:
        if self.classification not in CLASSES:
            raise ValueError(f"unknown classification {self.classification!r}")
        if (self.min_days_past_due is None) == (self.flag is None):
            raise ValueError("a rule has either a minimum of days past due or a flag")
        if self.min_days_past_due is not None and self.min_days_past_due < 0:
            raise ValueError("a rule's minimum of days past due cannot be negative")

    def matches(self, days_past_due: int, flags: Iterable[str]) -> bool:
        if self.min_days_past_due is not None:
            return days_past_due >= self.min_days_past_due
        return self.flag in flags


# China's 2023 financial asset risk classification measures (商业银行金融资产风险分类办法).
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("special_mention", min_days_past_due=1),
    Rule("substandard", min_days_past_due=91),
    Rule("doubtful", min_days_past_due=271),
    Rule("loss", min_days_past_due=361),
    Rule("substandard", flag="restructured"),
    Rule("special_mention", flag="litigation"),
    Rule("doubtful", flag="bankruptcy"),
)


def suggest_classification(
    days_past_due: int, flags: Iterable[str], rules: Iterable[Rule]
) -> tuple[str, list[Rule]]:
    """The worst class among the rules that match ("normal" when none does), and those rules."""
    flag_set = set(flags)
    matching = [rule for rule in rules if rule.matches(days_past_due, flag_set)]
    worst = max((CLASSES.index(rule.classification) for rule in matching), default=0)
    return CLASSES[worst], matching
