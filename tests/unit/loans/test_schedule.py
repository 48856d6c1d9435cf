"""Schedules reconcile to the cent for any terms, and match known figures."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tenantcrm.loans.schedule import (
    BULLET,
    EQUAL_INSTALLMENT,
    EQUAL_PRINCIPAL,
    INTEREST_ONLY,
    METHODS,
    InvalidTerms,
    add_months,
    build_schedule,
)

START = date(2026, 1, 15)
amounts = st.decimals(min_value=Decimal("100.00"), max_value=Decimal("50000000.00"), places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("0.36"), places=6)
terms = st.integers(min_value=1, max_value=360)


@settings(max_examples=300, deadline=None)
@given(amount=amounts, rate=rates, term=terms, method=st.sampled_from(METHODS))
def test_every_schedule_reconciles_to_the_cent(amount, rate, term, method):
    schedule = build_schedule(amount, rate, term, method, START)
    assert schedule.total_principal == amount
    for row in schedule.installments:
        assert row.payment == row.principal + row.interest
        assert row.principal >= 0 and row.interest >= 0
        assert row.principal == row.principal.quantize(Decimal("0.01"))
    assert schedule.installments[-1].balance_after == 0
    assert schedule.total_payment == amount + schedule.total_interest


@example(amount=Decimal("100.00"), rate=Decimal("0.000347"), term=359)  # interest rounds to 0
@example(amount=Decimal("100.00"), rate=Decimal("0"), term=180)  # a rounded-up cent a month
@settings(max_examples=200, deadline=None)
@given(amount=amounts, rate=rates, term=st.integers(min_value=2, max_value=360))
def test_equal_installments_are_equal_but_the_last(amount, rate, term):
    payments = [
        row.payment for row in build_schedule(amount, rate, term, EQUAL_INSTALLMENT, START).installments
    ]
    assert len(set(payments[:-1])) == 1


@settings(max_examples=200, deadline=None)
@given(amount=amounts, rate=rates, term=st.integers(min_value=2, max_value=360))
def test_equal_principal_instalments_fall(amount, rate, term):
    payments = [
        row.payment for row in build_schedule(amount, rate, term, EQUAL_PRINCIPAL, START).installments
    ]
    # The last absorbs the principal's rounding (at most a cent per instalment), so it may not.
    assert all(a >= b for a, b in itertools.pairwise(payments[:-1]))


def test_the_known_mortgage_pays_31673_22_a_month():
    schedule = build_schedule(Decimal("3000000.00"), Decimal("0.049"), 120, EQUAL_INSTALLMENT, START)
    assert {row.payment for row in schedule.installments[:-1]} == {Decimal("31673.22")}
    assert schedule.installments[0].interest == Decimal("12250.00")
    # 3,000,000 x 4.9% / 12: the first month's interest, exactly.
    # The last instalment differs from the others by the rounding it absorbs: under a yuan here.
    assert abs(schedule.installments[-1].payment - Decimal("31673.22")) < 1
    assert schedule.total_interest == schedule.total_payment - Decimal("3000000.00")


def test_equal_principal_golden():
    rows = build_schedule(Decimal("1200000.00"), Decimal("0.06"), 12, EQUAL_PRINCIPAL, START).installments
    assert rows[0].principal == Decimal("100000.00") and rows[0].interest == Decimal("6000.00")
    assert rows[-1].payment == Decimal("100500.00")


def test_interest_only_and_bullet():
    interest_only = build_schedule(
        Decimal("500000.00"), Decimal("0.072"), 6, INTEREST_ONLY, START
    ).installments
    assert [r.payment for r in interest_only[:-1]] == [Decimal("3000.00")] * 5
    assert interest_only[-1].payment == Decimal("503000.00")
    (bullet,) = build_schedule(Decimal("500000.00"), Decimal("0.072"), 6, BULLET, START).installments
    assert bullet.payment == Decimal("518000.00") and bullet.due_date == date(2026, 7, 15)


def test_zero_rate_spreads_the_amount():
    rows = build_schedule(Decimal("100.00"), Decimal("0"), 3, EQUAL_INSTALLMENT, START).installments
    assert [r.payment for r in rows] == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]


def test_due_dates_keep_the_day_or_the_month_end():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    rows = build_schedule(
        Decimal("1000.00"), Decimal("0.1"), 3, EQUAL_PRINCIPAL, date(2026, 1, 31)
    ).installments
    assert [r.due_date for r in rows] == [date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


@pytest.mark.parametrize(
    ("amount", "rate", "term", "method", "field"),
    [
        (Decimal("0"), Decimal("0.05"), 12, EQUAL_INSTALLMENT, "amount"),
        (Decimal("100.001"), Decimal("0.05"), 12, EQUAL_INSTALLMENT, "amount"),
        (Decimal("100"), Decimal("4.9"), 12, EQUAL_INSTALLMENT, "annual_rate"),
        (Decimal("100"), Decimal("-0.01"), 12, EQUAL_INSTALLMENT, "annual_rate"),
        (Decimal("100"), Decimal("0.0000001"), 12, EQUAL_INSTALLMENT, "annual_rate"),
        (Decimal("100"), Decimal("0.05"), 0, EQUAL_INSTALLMENT, "term_months"),
        (Decimal("100"), Decimal("0.05"), 481, EQUAL_INSTALLMENT, "term_months"),
        (Decimal("100"), Decimal("0.05"), 12, "weekly", "method"),
    ],
)
def test_impossible_terms_are_refused(amount, rate, term, method, field):
    with pytest.raises(InvalidTerms) as refused:
        build_schedule(amount, rate, term, method, START)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("typed", "code"),
    [("1e999999999", "too_large"), ("1e999999999万", "too_large"), ("-1e999999999", "invalid_amount")],
)
def test_absurd_amounts_are_refused_not_crashed_on(typed, code):
    from tenantcrm.loans.inputs import parse_loan_amount
    from tenantcrm.validation import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        parse_loan_amount(typed)
    assert [error.code for error in refused.value.errors] == [code]
