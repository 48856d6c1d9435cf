"""loanSchedule over GraphQL: the contract's shape, every method, readable refusals."""

from __future__ import annotations

from decimal import Decimal

import pytest

QUERY = """query ($amount: Decimal!, $rate: Decimal!, $term: Int!, $method: RepaymentMethod!) {
  loanSchedule(
    amount: $amount, annualRate: $rate, termMonths: $term, method: $method, startDate: "2026-01-31"
  ) {
    installments { number dueDate principal interest payment } totalInterest totalPayment } }"""


async def schedule(client, token, **variables):
    response = await client.post(
        "/graphql",
        json={"query": QUERY, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()


@pytest.mark.parametrize("method", ["EQUAL_INSTALLMENT", "EQUAL_PRINCIPAL", "INTEREST_ONLY", "BULLET"])
async def test_each_method_reconciles_and_serialises_money_as_two_decimal_strings(client, token_a, method):
    body = await schedule(client, token_a, amount="250000.00", rate="0.0435", term=36, method=method)
    result = body["data"]["loanSchedule"]
    rows = result["installments"]
    assert sum(Decimal(r["principal"]) for r in rows) == Decimal("250000.00")
    assert Decimal(result["totalPayment"]) == Decimal("250000.00") + Decimal(result["totalInterest"])
    assert all(len(r["payment"].split(".")[1]) == 2 for r in rows)
    assert rows[0]["dueDate"] == ("2026-02-28" if method != "BULLET" else "2029-01-31")


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"amount": "100.00", "rate": "4.9", "term": 12, "method": "BULLET"}, "annualRate"),
        ({"amount": "-5", "rate": "0.05", "term": 12, "method": "BULLET"}, "amount"),
        ({"amount": "100.00", "rate": "0.05", "term": 0, "method": "BULLET"}, "termMonths"),
    ],
)
async def test_impossible_terms_get_a_readable_error(client, token_a, variables, field):
    body = await schedule(client, token_a, **variables)
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith(f"{field}:")
