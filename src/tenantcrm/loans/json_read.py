"""A customer's loans and their next instalments as the API's JSON, built by PostgreSQL (ADR 0015)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column, null, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from tenantcrm.json_sql import (
    JsonField,
    NotCompilable,
    decimal_text,
    enum_name,
    iso_time,
    json_array,
    json_object,
)
from tenantcrm.loans.models import AllocationRow, InstallmentRow, Loan
from tenantcrm.loans.next_due_service import paid_as_of, still_owed

LOAN_SCALARS: dict[str, Callable[[], ColumnElement[Any]]] = {
    "id": lambda: Loan.id,
    "customerId": lambda: Loan.customer_id,
    "product": lambda: Loan.product,
    "amount": lambda: decimal_text(Loan.amount, 2),
    "annualRate": lambda: decimal_text(Loan.annual_rate, 6),
    "termMonths": lambda: Loan.term_months,
    "method": lambda: enum_name(Loan.method),
    "startDate": lambda: Loan.start_date,
    "firstDueDate": lambda: Loan.first_due_date,
    "status": lambda: enum_name(Loan.status),
    "classification": lambda: enum_name(Loan.classification),
    # Flags are stored in lower case without commas.
    "flags": lambda: json_array(func.string_to_array(enum_name(func.array_to_string(Loan.flags, ",")), ",")),
    "settledOn": lambda: Loan.settled_on,
    "createdAt": lambda: iso_time(Loan.created_at),
    "updatedAt": lambda: iso_time(Loan.updated_at),
    "__typename": lambda: literal("Loan"),
}


def _installment_pairs(fields: tuple[JsonField, ...], row: Any) -> list[tuple[str, ColumnElement[Any]]]:
    """LoanInstallment's fields over `row`, a subquery with the instalment's columns and its parts
    paid as of the day (principal_paid, interest_paid)."""
    payment = row.principal + row.interest
    scalars: dict[str, ColumnElement[Any]] = {
        "number": row.number,
        "dueDate": row.due_date,
        "principal": decimal_text(row.principal, 2),
        "interest": decimal_text(row.interest, 2),
        "payment": decimal_text(payment, 2),
        "principalPaid": decimal_text(row.principal_paid, 2),
        "interestPaid": decimal_text(row.interest_paid, 2),
        "outstanding": decimal_text(payment - row.principal_paid - row.interest_paid, 2),
        # The next instalment is one not fully paid as of the day: it has no paid-on date.
        "paidOn": null(),
        "__typename": literal("LoanInstallment"),
    }
    pairs = []
    for key, name, sub in fields:
        if name not in scalars or sub is not None:
            raise NotCompilable(f"LoanInstallment.{name}")
        pairs.append((key, scalars[name]))
    return pairs


def next_installment_json(fields: tuple[JsonField, ...], as_of: date) -> ColumnElement[Any]:
    """The loan's next instalment as of the day (next_due_service's rule), or NULL; correlated to
    the enclosing statement's Loan."""
    candidate = (
        select(
            InstallmentRow.number,
            InstallmentRow.due_date,
            InstallmentRow.principal,
            InstallmentRow.interest,
            paid_as_of(InstallmentRow, AllocationRow.principal, as_of).label("principal_paid"),
            paid_as_of(InstallmentRow, AllocationRow.interest, as_of).label("interest_paid"),
        )
        .where(InstallmentRow.loan_id == Loan.id, *still_owed(InstallmentRow, as_of))
        .order_by(InstallmentRow.number)
        .limit(1)
        .correlate(Loan)  # the enclosing loan, two levels up
        .subquery("next_due")
    )
    return select(json_object(_installment_pairs(fields, candidate.c))).scalar_subquery()


def loans_json(fields: tuple[JsonField, ...], customer_id: Any, as_of: date) -> ColumnElement[Any]:
    """The customer's loans, oldest first, as a JSON array (the API's Customer.loans)."""
    pairs = []
    for key, name, sub in fields:
        if name == "nextInstallment" and sub is not None:
            pairs.append((key, next_installment_json(sub, as_of)))
        elif name in LOAN_SCALARS and sub is None:
            pairs.append((key, LOAN_SCALARS[name]()))
        else:
            raise NotCompilable(f"Loan.{name}")
    aggregated = func.json_agg(
        aggregate_order_by(json_object(pairs), Loan.start_date, Loan.created_at, Loan.id)
    )
    return (
        select(func.coalesce(aggregated, literal_column("'[]'::json")))
        .where(Loan.customer_id == customer_id)
        .scalar_subquery()
    )
