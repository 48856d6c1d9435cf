"""The customer profile: identity facts from the resident ID, financials, grades, tags, choices."""

from datetime import date
from decimal import Decimal

import pytest

from tenantcrm.customers.inputs import parse_tags, validate_customer
from tenantcrm.validation import InvalidInput

FEMALE_1949 = "11010519491231002X"
MALE_1980 = "440524198001010013"


def codes(exc: InvalidInput) -> dict[str, str]:
    return {error.field: error.code for error in exc.errors}


def test_gender_and_birth_date_are_derived_from_the_resident_id():
    clean = validate_customer({"name": "王芳", "national_id": FEMALE_1949})
    assert clean["gender"] == "female"
    assert clean["birth_date"] == date(1949, 12, 31)


def test_gender_or_birth_date_contradicting_the_id_is_refused():
    with pytest.raises(InvalidInput) as caught:
        validate_customer(
            {"name": "王芳", "national_id": FEMALE_1949, "gender": "male", "birth_date": "1949-12-30"}
        )
    assert codes(caught.value) == {"gender": "identity_mismatch", "birth_date": "identity_mismatch"}


def test_matching_facts_are_accepted_in_any_date_spelling():
    clean = validate_customer(
        {"name": "李强", "national_id": MALE_1980, "gender": "MALE", "birth_date": "1980/1/1"}
    )
    assert (clean["gender"], clean["birth_date"]) == ("male", date(1980, 1, 1))


def test_without_an_id_gender_and_birth_date_are_taken_as_given():
    clean = validate_customer({"name": "武丹丹", "gender": "female", "birth_date": "1971-09-16"})
    assert (clean["gender"], clean["birth_date"]) == ("female", date(1971, 9, 16))


def test_an_update_may_not_drift_from_the_id_on_file():
    locked = (date(1980, 1, 1), "male")
    with pytest.raises(InvalidInput) as caught:
        validate_customer({"gender": "female"}, partial=True, current_kind="individual", locked_facts=locked)
    assert codes(caught.value) == {"gender": "identity_mismatch"}
    # Emptying them keeps what the ID says; other fields leave them alone.
    assert validate_customer(
        {"gender": ""}, partial=True, current_kind="individual", locked_facts=locked
    ) == {"gender": "male"}
    assert validate_customer(
        {"occupation": "教师"}, partial=True, current_kind="individual", locked_facts=locked
    ) == {"occupation": "教师"}


def test_a_new_id_on_update_resets_the_facts():
    clean = validate_customer(
        {"national_id": FEMALE_1949},
        partial=True,
        current_kind="individual",
        locked_facts=(date(1980, 1, 1), "male"),
    )
    assert (clean["gender"], clean["birth_date"]) == ("female", date(1949, 12, 31))


def test_enterprises_have_no_gender_birth_date_or_marital_status():
    with pytest.raises(InvalidInput) as caught:
        validate_customer(
            {"kind": "enterprise", "name": "某公司", "gender": "male", "marital_status": "married"}
        )
    assert codes(caught.value) == {"gender": "individual_only", "marital_status": "individual_only"}
    clean = validate_customer({"kind": "enterprise", "name": "某公司", "industry": "制造业"})
    assert clean["industry"] == "制造业" and clean["gender"] is None


def test_financials_are_exact_amounts():
    clean = validate_customer(
        {"name": "a", "monthly_income": "15,000", "assets": "¥5000000.00", "liabilities": "1200000.5"}
    )
    assert clean["assets"] == Decimal("5000000.00")
    assert clean["liabilities"] == Decimal("1200000.50")
    with pytest.raises(InvalidInput) as caught:
        validate_customer({"name": "a", "assets": "-1", "liabilities": "lots"})
    assert codes(caught.value) == {"assets": "invalid_amount", "liabilities": "invalid_amount"}


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"credit_score": "1001"}, "credit_score", "invalid_score"),
        ({"credit_score": "7.5"}, "credit_score", "invalid_score"),
        ({"credit_grade": "AAAA"}, "credit_grade", "invalid_choice"),
        ({"marital_status": "complicated"}, "marital_status", "invalid_choice"),
        ({"source": "billboard"}, "source", "invalid_choice"),
        ({"birth_date": "1899-12-31"}, "birth_date", "invalid_date"),
        ({"birth_date": "2999-01-01"}, "birth_date", "invalid_date"),
        ({"birth_date": "1990-02-30"}, "birth_date", "invalid_date"),
        ({"occupation": "x" * 101}, "occupation", "too_long"),
        ({"tags": ",".join(f"t{i}" for i in range(21))}, "tags", "invalid_tags"),
        ({"tags": "y" * 31}, "tags", "invalid_tags"),
    ],
)
def test_bad_profile_values_are_refused_by_field(data, field, code):
    with pytest.raises(InvalidInput) as caught:
        validate_customer({"name": "a", **data})
    assert codes(caught.value) == {field: code}


def test_grades_are_case_insensitive_and_scores_whole():
    clean = validate_customer({"name": "a", "credit_grade": "bbb", "credit_score": "720"})
    assert (clean["credit_grade"], clean["credit_score"]) == ("BBB", 720)


def test_tags_split_on_chinese_and_latin_commas_without_duplicates():
    assert parse_tags("VIP，房贷、 VIP ,  重点客户 ") == ["VIP", "房贷", "重点客户"]
    assert parse_tags(["a", " a", "b"]) == ["a", "b"]
    assert parse_tags("") == []


def test_free_text_keeps_chinese_punctuation_and_line_breaks() -> None:
    from tenantcrm.customers.inputs import limited_text

    errors: list = []
    text = limited_text(" 三期未还，电话无人接听。\r\n下一步：上门核实（本周）\x00 ", "summary", 100, errors)
    assert text == "三期未还，电话无人接听。\n下一步：上门核实（本周）"
    assert errors == []
    limited_text("长" * 101, "summary", 100, errors)
    limited_text(" \t\n ", "summary", 100, errors, required=True)
    assert [e.code for e in errors] == ["too_long", "required"]
