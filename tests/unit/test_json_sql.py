"""The compiled reads write enum names as upper(value) (json_sql.enum_name): true of every enum they write."""

from __future__ import annotations

import pytest

from tenantcrm.graphql import customers, loans

COMPILED_ENUMS = [
    customers.CustomerKind,
    customers.RiskLevel,
    customers.CustomerStatus,
    customers.Gender,
    customers.MaritalStatus,
    customers.CreditGrade,
    customers.CustomerSource,
    loans.RepaymentMethod,
    loans.LoanStatus,
    loans.LoanClassification,
    loans.LoanFlag,
]


@pytest.mark.parametrize("enum", COMPILED_ENUMS, ids=lambda e: e.__name__)
def test_each_name_is_its_value_in_upper_case(enum):
    assert [member.name for member in enum] == [str(member.value).upper() for member in enum]
    assert all("," not in str(member.value) for member in enum)  # flags are joined with commas
