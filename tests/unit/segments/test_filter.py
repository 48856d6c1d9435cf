"""Segment filter trees: what parse_filter accepts and refuses, and SQL that carries no input text."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from tenantcrm.customers.models import Customer
from tenantcrm.segments.filter import (
    FIELDS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    OPERATORS,
    Condition,
    Group,
    Not,
    compile_filter,
    parse_filter,
    to_raw,
)
from tenantcrm.validation import InvalidInput

AS_OF = date(2026, 6, 30)
OWNER = "6f1c2a9e-8d1b-4c55-9a3e-2b7f0c1d4e5a"
# One good value per field for each operator it takes (between gets [low, high]).
GOOD = {
    "kind": "enterprise",
    "status": "active",
    "regionCode": "310000",
    "riskLevel": "high",
    "creditGrade": "BBB",
    "creditScore": 600,
    "monthlyIncome": "20000.50",
    "tags": "vip",
    "ownerId": OWNER,
    "teamId": OWNER,
    "createdAt": "2025-01-31",
    "daysSinceLastContact": 30,
    "outstandingBalance": 100000,
    "classification": "substandard",
    "daysPastDue": 45,
    "arrearsBucket": "31-60",
    "product": "房抵贷",
    "hasOpenRiskCase": True,
    "flagged": False,
}
HIGHER = {
    "creditScore": 700,
    "monthlyIncome": "30000",
    "createdAt": "2025-12-31",
    "daysSinceLastContact": 60,
    "outstandingBalance": 200000,
    "daysPastDue": 90,
}
BAD = {
    "kind": "person",
    "status": "Active",
    "regionCode": "999999",
    "riskLevel": "extreme",
    "creditGrade": "E",
    "creditScore": 1001,
    "monthlyIncome": "lots",
    "tags": "x" * 31,
    "ownerId": "not-an-id",
    "teamId": 7,
    "createdAt": "31/01/2025",
    "daysSinceLastContact": -1,
    "outstandingBalance": "1e99",
    "classification": "bad",
    "daysPastDue": 1.5,
    "arrearsBucket": "1-29",
    "product": "",
    "hasOpenRiskCase": "yes",
    "flagged": 1,
}


def value_for(name: str, op: str) -> object:
    if op == "between":
        return [GOOD[name], HIGHER[name]]
    if op == "in":
        return [GOOD[name]]
    return GOOD[name]


def sql_of(raw: object) -> str:
    statement = select(Customer.id).where(compile_filter(parse_filter(raw), AS_OF))
    return str(statement.compile(dialect=postgresql.dialect()))


def refusal(raw: object) -> tuple[str, str]:
    with pytest.raises(InvalidInput) as refused:
        parse_filter(raw)
    (error,) = refused.value.errors
    assert error.field == "filter"
    return error.code, error.text()


def test_every_field_has_a_good_and_a_bad_example() -> None:
    assert set(GOOD) == set(FIELDS) == set(BAD)


@pytest.mark.parametrize(("name", "op"), [(name, op) for name, f in FIELDS.items() for op in f.ops])
def test_each_field_accepts_each_of_its_operators_and_compiles(name: str, op: str) -> None:
    raw = {"field": name, "op": op, "value": value_for(name, op)}
    node = parse_filter(raw)
    assert isinstance(node, Condition) and node.field == name and node.op == op
    assert parse_filter(to_raw(node)) == node  # what is saved reads back the same
    assert "customers" in sql_of(raw)


@pytest.mark.parametrize(
    ("name", "op"), [(name, op) for name, f in FIELDS.items() for op in OPERATORS if op not in f.ops]
)
def test_each_field_refuses_operators_it_does_not_take(name: str, op: str) -> None:
    code, message = refusal({"field": name, "op": op, "value": GOOD[name]})
    assert code == "operator_not_allowed"
    assert message == f"$: {name} does not take the operator '{op}'."


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_each_field_refuses_a_bad_value(name: str) -> None:
    op = "eq" if "eq" in FIELDS[name].ops else FIELDS[name].ops[0]
    code, message = refusal({"field": name, "op": op, "value": BAD[name]})
    assert code.startswith("invalid_")
    assert message.startswith("$: ") and name in message


def test_values_are_typed() -> None:
    node = parse_filter(
        {
            "and": [
                {"field": "monthlyIncome", "op": "gte", "value": "8,000"},
                {"field": "creditScore", "op": "between", "value": ["500", 700]},
                {"field": "createdAt", "op": "lt", "value": "2025-01-01"},
                {"field": "ownerId", "op": "in", "value": [OWNER, OWNER]},
                {"field": "flagged", "op": "eq", "value": "true"},
            ]
        }
    )
    assert isinstance(node, Group)
    income, score, created, owner, flagged = node.children
    assert income.value == Decimal("8000.00")
    assert score.value == (500, 700)
    assert created.value == date(2025, 1, 1)
    assert owner.value == (uuid.UUID(OWNER),)  # duplicates dropped
    assert flagged.value is True


def test_groups_nest_with_not_and_json_text_is_accepted() -> None:
    raw = {
        "and": [
            {"field": "riskLevel", "op": "eq", "value": "high"},
            {
                "or": [
                    {"field": "regionCode", "op": "eq", "value": "310000"},
                    {"not": {"field": "flagged", "op": "eq", "value": True}},
                ]
            },
        ]
    }
    node = parse_filter(json.dumps(raw))
    assert isinstance(node, Group) and node.kind == "and"
    inner = node.children[1]
    assert isinstance(inner, Group) and inner.kind == "or" and isinstance(inner.children[1], Not)
    assert to_raw(node) == raw
    assert parse_filter({"and": []}) == Group("and", ())


def test_errors_say_where_in_the_tree() -> None:
    raw = {
        "and": [
            {"field": "riskLevel", "op": "eq", "value": "high"},
            {"field": "kind", "op": "eq", "value": "individual"},
            {"or": [{"field": "foo", "op": "eq", "value": 1}]},
        ]
    }
    assert refusal(raw) == ("unknown_field", "and[2].or[0]: unknown field 'foo'.")
    assert refusal({"not": {"and": [{"field": "kind", "op": "like", "value": "x"}]}}) == (
        "unknown_operator",
        "not.and[0]: unknown operator 'like'.",
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_json"),
        ([], "invalid_shape"),
        ({}, "invalid_shape"),
        ({"and": {"field": "kind"}}, "invalid_shape"),
        ({"and": [], "or": []}, "invalid_shape"),
        ({"xor": []}, "invalid_shape"),
        ({"or": []}, "empty_group"),
        ({"field": "kind", "op": "eq", "value": "individual", "extra": 1}, "invalid_shape"),
        ({"field": "kind", "op": "eq"}, "missing_value"),
        ({"field": "kind", "op": "in", "value": "individual"}, "invalid_list"),
        ({"field": "kind", "op": "in", "value": []}, "invalid_list"),
        ({"field": "creditScore", "op": "in", "value": list(range(101))}, "invalid_list"),
        ({"field": "creditScore", "op": "between", "value": [700, 500]}, "invalid_between"),
        ({"field": "creditScore", "op": "between", "value": [1, 2, 3]}, "invalid_between"),
        ({"field": "creditScore", "op": "between", "value": 5}, "invalid_between"),
        ({"field": "creditScore", "op": "eq", "value": True}, "invalid_int"),
        ({"field": "monthlyIncome", "op": "eq", "value": float("nan")}, "invalid_decimal"),
        ({"field": "createdAt", "op": "eq", "value": "2025-02-30"}, "invalid_date"),
        ({"field": ["kind"], "op": "eq", "value": "x"}, "unknown_field"),
    ],
)
def test_malformed_filters_are_refused(raw: object, code: str) -> None:
    assert refusal(raw)[0] == code


def test_depth_is_limited() -> None:
    leaf: dict = {"field": "kind", "op": "eq", "value": "individual"}
    allowed = leaf
    for _ in range(MAX_DEPTH):
        allowed = {"not": allowed}
    assert isinstance(parse_filter(allowed), Not)
    assert refusal({"and": [allowed]})[0] == "too_deep"


def test_the_number_of_conditions_is_limited() -> None:
    leaf = {"field": "creditScore", "op": "gte", "value": 1}
    assert isinstance(parse_filter({"and": [leaf] * MAX_CONDITIONS}), Group)
    code, message = refusal({"and": [leaf] * (MAX_CONDITIONS + 1)})
    assert (
        code == "too_many_conditions"
        and message == f"and[{MAX_CONDITIONS}]: a filter has at most 50 conditions."
    )


@pytest.mark.parametrize(
    "name", ["riskLevel; DROP TABLE customers", "risk_level", "customers.name", "' OR 1=1 --", "__class__"]
)
def test_field_names_outside_the_whitelist_are_refused(name: str) -> None:
    code, message = refusal({"field": name, "op": "eq", "value": "high"})
    assert code == "unknown_field"
    assert len(message) < 80  # the echoed name is cut short


@pytest.mark.parametrize(
    ("field", "op", "value"),
    [
        ("riskLevel", "eq", "' OR 1=1 --"),
        ("regionCode", "in", ["310000'); DROP TABLE customers; --"]),
        ("creditScore", "gte", "1; DELETE FROM loans"),
        ("createdAt", "gt", "2025-01-01' OR '1'='1"),
    ],
)
def test_injection_values_for_typed_fields_are_refused(field: str, op: str, value: object) -> None:
    assert refusal({"field": field, "op": op, "value": value})[0].startswith("invalid_")


@pytest.mark.parametrize(
    ("field", "op", "value"),
    [
        ("product", "contains", "' OR 1=1 --"),
        ("product", "eq", "x'; DROP TABLE customers; --"),
        ("tags", "contains", ["vip'--", "a\\b%_"]),
    ],
)
def test_free_text_values_are_bound_never_spliced(field: str, op: str, value: object) -> None:
    raw = {"field": field, "op": op, "value": value}
    statement = select(Customer.id).where(compile_filter(parse_filter(raw), AS_OF))
    compiled = statement.compile(dialect=postgresql.dialect())
    text = str(compiled)
    for fragment in ("OR 1=1", "DROP TABLE", "vip'", "a\\b"):
        assert fragment not in text
    params = [str(v) for v in compiled.params.values()]
    assert any("OR 1=1" in p or "DROP TABLE" in p or "vip'--" in p for p in params)


def test_compiled_sql_carries_no_values_at_all() -> None:
    raw = {
        "and": [
            {"field": name, "op": op, "value": value_for(name, op)}
            for name, f in FIELDS.items()
            for op in f.ops[:1]
        ]
    }
    text = sql_of(raw)
    for marker in ("310000", "房抵贷", "BBB", "substandard", "20000.5", "2025-01-31", OWNER, "vip"):
        assert marker not in text


def test_not_is_the_complement_for_nullable_columns() -> None:
    text = sql_of({"not": {"field": "creditScore", "op": "gt", "value": 500}})
    assert "credit_score IS NOT NULL" in text  # NULL score is "not above 500", not unknown
    assert "IS DISTINCT FROM" in sql_of({"field": "creditGrade", "op": "ne", "value": "A"})


@pytest.mark.parametrize("typed", ["²", "①", "١٢"])
def test_digits_int_cannot_read_are_refused_not_crashed_on(typed: str) -> None:
    with pytest.raises(InvalidInput):
        parse_filter({"field": "creditScore", "op": "eq", "value": typed})
