"""Every example operation in graphql/examples runs against the real app and does what it says.

The examples are what API users copy, so each one must parse, take exactly the variables its
`.variables.json` gives, run without errors and return the expected type. A new example
without an expectation below fails, so it cannot go untested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from tenantcrm.settings import REPO_ROOT

EXAMPLES = REPO_ROOT / "graphql" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.graphql"))
CREATE = """
mutation ($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on Customer { id name } }
}
"""


@dataclass(frozen=True)
class Run:
    """What one example run knows: its data and the customer made for it."""

    data: dict[str, Any]
    customer_id: str
    customer_name: str
    admin_email: str


def _list_customers(run: Run) -> None:
    connection = run.data["customers"]
    assert connection["__typename"] == "CustomerConnection"
    # The search was narrowed to this run's customer, so the page is exactly that one.
    assert [edge["node"]["id"] for edge in connection["edges"]] == [run.customer_id]
    assert connection["totalCount"] == 1
    assert connection["pageInfo"]["hasNextPage"] is False
    assert connection["pageInfo"]["endCursor"] == connection["edges"][0]["cursor"]
    node = connection["edges"][0]["node"]
    assert (node["riskLevel"], node["status"]) == ("LOW", "PROSPECT")


def _customer_by_id(run: Run) -> None:
    customer = run.data["customer"]
    assert customer is not None, "the example found no customer"
    assert customer["__typename"] == "Customer"
    assert customer["id"] == run.customer_id
    assert customer["name"] == run.customer_name


def _create_customer(run: Run) -> None:
    result = run.data["createCustomer"]
    assert result["__typename"] == "Customer", result
    assert result["monthlyIncome"] == "12345.60"
    assert result["regionName"]
    uuid.UUID(result["id"])


def _update_customer(run: Run) -> None:
    result = run.data["updateCustomer"]
    assert result["__typename"] == "Customer", result
    assert result["id"] == run.customer_id
    assert result["name"] == run.customer_name  # not in the input: unchanged
    assert (result["monthlyIncome"], result["riskLevel"], result["status"]) == (
        "15000.00",
        "MEDIUM",
        "ACTIVE",
    )


def _reveal_customer_pii(run: Run) -> None:
    result = run.data["revealCustomerPii"]
    assert result["__typename"] == "RevealedPii", result
    assert result["customerId"] == run.customer_id
    # The run's customer was made without personal data: the fields asked for are null, and
    # the ones not asked for (email, address) are null whatever the customer holds.
    assert (result["nationalId"], result["phone"], result["email"], result["address"]) == (None,) * 4


def _loan_schedule(run: Run) -> None:
    schedule = run.data["loanSchedule"]
    assert schedule["__typename"] == "LoanSchedule"
    rows = schedule["installments"]
    assert len(rows) == 120 and {row["payment"] for row in rows[:-1]} == {"31673.22"}
    assert rows[0] == {
        "number": 1,
        "dueDate": "2027-01-01",
        "principal": "19423.22",
        "interest": "12250.00",
        "payment": "31673.22",
    }


def _viewer(run: Run) -> None:
    viewer = run.data["viewer"]
    assert viewer["__typename"] == "Viewer"
    assert viewer["email"] == run.admin_email
    assert "customers.read" in viewer["permissions"]


EXPECTED: dict[str, Callable[[Run], None]] = {
    "listCustomers": _list_customers,
    "customerById": _customer_by_id,
    "createCustomer": _create_customer,
    "updateCustomer": _update_customer,
    "revealCustomerPii": _reveal_customer_pii,
    "loanSchedule": _loan_schedule,
    "viewer": _viewer,
}


def _name(path: Path) -> str:
    return path.name.removesuffix(".graphql")


def _variables(path: Path) -> dict[str, Any] | None:
    """The example's variables file, or None when it has none."""
    variables_file = path.with_name(f"{_name(path)}.variables.json")
    return json.loads(variables_file.read_text(encoding="utf-8")) if variables_file.exists() else None


def test_the_examples_exist():
    assert EXAMPLE_FILES, f"no example operations in {EXAMPLES}"
    missing = sorted(set(EXPECTED) - {_name(path) for path in EXAMPLE_FILES})
    assert not missing, f"examples with an expectation but no file: {missing}"


def test_every_variables_file_belongs_to_an_example():
    names = {_name(path) for path in EXAMPLE_FILES}
    orphans = [
        p.name
        for p in EXAMPLES.glob("*.variables.json")
        if p.name.removesuffix(".variables.json") not in names
    ]
    assert not orphans, f"variables files without an example: {orphans}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_name)
def test_example_is_one_documented_operation(path: Path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), f"{path.name} must start with a comment saying what it does"
    document = parse(text)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, f"{path.name} must hold exactly one operation"
    operation = operations[0]
    assert operation.name is not None, f"{path.name}: name the operation (it shows in logs)"
    declared = {v.variable.name.value for v in operation.variable_definitions or ()}
    given = set(_variables(path) or {})
    assert given == declared, (
        f"{path.name} declares {sorted(declared)}, its variables file gives {sorted(given)}"
    )


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_name)
async def test_example_runs_against_a_real_server(path: Path, live_server, token_a, tenant_a):
    name = _name(path)
    expectation = EXPECTED.get(name)
    if expectation is None:
        pytest.fail(f"graphql/examples/{path.name} has no expectation: add one to EXPECTED in {__file__}")
    headers = {"Authorization": f"Bearer {token_a}"}
    async with httpx.AsyncClient(base_url=live_server) as client:
        await _run_example(client, path, headers, expectation, tenant_a)


async def _run_example(client, path: Path, headers, expectation, tenant_a) -> None:
    query, variables = path.read_text(encoding="utf-8"), _variables(path) or {}  # noqa: ASYNC240

    # The examples that need an existing customer get one made for this run.
    customer_name = f"张 example {uuid.uuid4().hex[:8]}"
    made = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"kind": "INDIVIDUAL", "name": customer_name}}},
        headers=headers,
    )
    created = made.json()["data"]["createCustomer"]
    assert created["__typename"] == "Customer", made.text

    if "id" in variables:
        variables["id"] = created["id"]
    if isinstance(variables.get("filter"), dict) and "search" in variables["filter"]:
        # Other tests add customers to this tenant: search for this run's one alone.
        assert variables["filter"]["search"] in customer_name
        variables["filter"]["search"] = customer_name
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    expectation(Run(body["data"], created["id"], customer_name, tenant_a.admin_email))
