"""Loan and collateral input: the loan maximum and the lien order, refused the same way everywhere."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tenantcrm.collateral.inputs import validate_collateral
from tenantcrm.loans.inputs import parse_loan_amount, validate_loan
from tenantcrm.loans.schedule import MAX_AMOUNT, InvalidTerms, build_schedule
from tenantcrm.validation import InvalidInput

TERMS = {
    "product": "经营贷",
    "annual_rate": "0.049",
    "term_months": "12",
    "method": "equal_installment",
    "start_date": date(2025, 1, 15).isoformat(),
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("300万", Decimal("3000000.00")),
        ("3,000,000", Decimal("3000000.00")),
        (Decimal("120000"), Decimal("120000.00")),
        ("99999999.99万", Decimal("999999999900.00")),
        ("999999999999.99", Decimal("999999999999.99")),
    ],
)
def test_amounts_below_the_loan_maximum_are_read(raw, expected):
    assert parse_loan_amount(raw) == expected


@pytest.mark.parametrize(
    "raw", ["100000000万", "100000000.01w", "1000000000000", "1,000,000,000,000.00", Decimal("1E+12"), "1e15"]
)
def test_amounts_at_or_over_the_loan_maximum_are_refused_naming_it(raw):
    with pytest.raises(InvalidInput) as refused:
        parse_loan_amount(raw)
    (error,) = refused.value.errors
    assert (error.field, error.code) == ("amount", "too_large")
    assert error.text() == "A loan must be less than 1,000,000,000,000 yuan."


@pytest.mark.parametrize("raw", ["abc", "0", "0万", "-5", "1.234", "", None, 1.5, "NaN", "Infinity万"])
def test_malformed_or_empty_amounts_are_refused_as_such(raw):
    with pytest.raises(InvalidInput) as refused:
        parse_loan_amount(raw)
    assert [(e.field, e.code) for e in refused.value.errors] == [("amount", "invalid_amount")]


@pytest.mark.parametrize(
    "amount", ["999999999999.99", "99999999.99万", "0.01", "1000000000000", "100000000万"]
)
def test_validation_and_the_schedule_agree_on_the_maximum(amount):
    """Whatever validate_loan accepts, a schedule can be made of: no surface needs its own bound."""
    try:
        values = validate_loan({**TERMS, "amount": amount})
    except InvalidInput as refused:
        assert refused.for_field("amount") is not None
        assert Decimal(amount.replace("万", "")) * (10000 if "万" in amount else 1) >= MAX_AMOUNT
        return
    build_schedule(values["amount"], values["annual_rate"], 12, values["method"], values["start_date"])
    with pytest.raises(InvalidTerms):
        build_schedule(MAX_AMOUNT, values["annual_rate"], 12, values["method"], values["start_date"])


@pytest.mark.parametrize("order", [0, "0", -1, "-1", 10, "10", "一"])
def test_a_lien_order_outside_1_to_9_is_refused_never_made_a_first_lien(order):
    data = {"kind": "residence", "appraised_value": "100", "lien_order": order}
    for partial in (False, True):
        with pytest.raises(InvalidInput) as refused:
            validate_collateral(data, partial=partial)
        assert [(e.field, e.code) for e in refused.value.errors] == [("lien_order", "invalid_lien_order")]


@pytest.mark.parametrize(("order", "expected"), [(None, 1), ("", 1), (1, 1), ("2", 2), (9, 9)])
def test_a_missing_lien_order_is_a_first_lien(order, expected):
    data = {"kind": "residence", "appraised_value": "100"}
    if order is not None:
        data["lien_order"] = order
    assert validate_collateral(data)["lien_order"] == expected
