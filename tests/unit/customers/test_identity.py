"""Resident IDs, credit codes and phone numbers as Chinese institutions write them."""

from datetime import date

import pytest

from tenantcrm.customers.identity import (
    credit_code_problem,
    phone_problem,
    resident_id_facts,
    resident_id_problem,
)
from tenantcrm.pii.masking import normalize_national_id, normalize_phone

# The GB 11643 example number and a checked one (weights 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2).
VALID_IDS = ["11010519491231002X", "440524198001010013"]


@pytest.mark.parametrize("value", VALID_IDS)
def test_valid_resident_ids(value):
    assert resident_id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("110105194912310021", "check_digit"),
        ("11010519491331002X", "birth_date"),
        ("11010520991231002X", "birth_date"),
        ("11010519491231002", "format"),
        ("01010519491231002X", "format"),
    ],
)
def test_invalid_resident_ids(value, problem):
    assert resident_id_problem(value) == problem


def test_birth_date_and_gender_come_from_the_id():
    assert resident_id_facts("11010519491231002X") == (date(1949, 12, 31), "female")
    assert resident_id_facts("440524198001010013") == (date(1980, 1, 1), "male")


def test_full_width_and_spaces_are_normalised():
    assert normalize_national_id("１１０１０５ １９４９１２３１００２ｘ") == "11010519491231002X"


@pytest.mark.parametrize("value", ["91350100M000100Y43", "91110000600037341L"])
def test_valid_credit_codes(value):
    assert credit_code_problem(value) is None


@pytest.mark.parametrize(("value", "problem"), [("91350100M000100Y44", "check_digit"), ("9135", "format")])
def test_invalid_credit_codes(value, problem):
    assert credit_code_problem(value) == problem


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("138 1234 5678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("021-12345678", "021-12345678"),
        ("0755 8888 1234", "0755-88881234"),
    ],
)
def test_valid_phones(raw, normalised):
    assert normalize_phone(raw) == normalised and phone_problem(normalised) is None


@pytest.mark.parametrize("raw", ["12345", "23812345678", "021-123"])
def test_invalid_phones(raw):
    assert phone_problem(normalize_phone(raw)) == "format"
