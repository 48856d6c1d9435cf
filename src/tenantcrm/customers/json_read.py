"""A customer as the API's JSON, built by PostgreSQL inside the list's one statement (ADR 0015)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.dialects.postgresql import asyncpg

from tenantcrm.auth.models import User
from tenantcrm.customers.models import Customer
from tenantcrm.customers.regions import REGIONS
from tenantcrm.json_sql import (
    JsonField,
    NotCompilable,
    decimal_text,
    enum_name,
    iso_time,
    json_array,
    json_object,
    lookup,
)
from tenantcrm.loans.json_read import loans_json

# Customer.regionName is region_name(code) in its default locale (Chinese).
REGION_NAMES = {code: names[0] for code, names in REGIONS.items()}

CUSTOMER_SCALARS: dict[str, Callable[[], ColumnElement[Any]]] = {
    "id": lambda: Customer.id,
    "kind": lambda: enum_name(Customer.kind),
    "name": lambda: Customer.name,
    "regionCode": lambda: Customer.region_code,
    "regionName": lambda: lookup(Customer.region_code, REGION_NAMES),
    "monthlyIncome": lambda: decimal_text(Customer.monthly_income),
    "gender": lambda: enum_name(Customer.gender),
    "birthDate": lambda: Customer.birth_date,
    "maritalStatus": lambda: enum_name(Customer.marital_status),
    "occupation": lambda: Customer.occupation,
    "industry": lambda: Customer.industry,
    "assets": lambda: decimal_text(Customer.assets),
    "liabilities": lambda: decimal_text(Customer.liabilities),
    "creditScore": lambda: Customer.credit_score,
    "creditGrade": lambda: Customer.credit_grade,
    "tags": lambda: json_array(Customer.tags),
    "source": lambda: enum_name(Customer.source),
    "legalHold": lambda: func.coalesce(Customer.legal_hold, False),
    "riskLevel": lambda: enum_name(Customer.risk_level),
    "status": lambda: enum_name(Customer.status),
    # Masked values only, as stored: the clear ones need revealCustomerPii and its log.
    "nationalId": lambda: Customer.national_id_masked,
    "phone": lambda: Customer.phone_masked,
    "email": lambda: Customer.email_masked,
    "address": lambda: Customer.address_masked,
    "createdAt": lambda: iso_time(Customer.created_at),
    "updatedAt": lambda: iso_time(Customer.updated_at),
    "__typename": lambda: literal("Customer"),
}
USER_REF = {"id": User.id, "displayName": User.display_name}


def _owner_json(fields: tuple[JsonField, ...]) -> ColumnElement[Any]:
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for key, name, sub in fields:
        if name == "__typename":
            pairs.append((key, literal("UserRef")))
        elif name in USER_REF and sub is None:
            pairs.append((key, USER_REF[name]))
        else:
            raise NotCompilable(f"UserRef.{name}")
    return select(json_object(pairs)).where(User.id == Customer.owner_id).scalar_subquery()


@functools.lru_cache(maxsize=256)
def customer_json_sql(fields: tuple[JsonField, ...], as_of: date) -> str:
    """customer_json as SQL text over the table `customers`, its keys and the day written in as
    literals: built and compiled once per selection and day, not on every request (building the
    expression was a fifth of a compiled list's CPU)."""
    # Compiled as the column of a select over customers, so that its subqueries correlate to it.
    statement = select(customer_json(fields, as_of).label("node")).select_from(Customer)
    sql = str(statement.compile(dialect=asyncpg.dialect(), compile_kwargs={"literal_binds": True}))
    head, tail = "SELECT ", " AS node \nFROM customers"
    if not (sql.startswith(head) and sql.endswith(tail)):
        raise RuntimeError(f"unexpected SQL around the customer JSON: {sql[:40]}...{sql[-40:]}")
    return sql[len(head) : -len(tail)]


def customer_json(fields: tuple[JsonField, ...], as_of: date) -> ColumnElement[Any]:
    """The selected fields of the statement's Customer as a JSON object; `as_of` is the day the
    loans' next instalments are read for. NotCompilable for a field it does not build."""
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for key, name, sub in fields:
        if name == "loans" and sub is not None:
            pairs.append((key, loans_json(sub, Customer.id, as_of)))
        elif name == "owner" and sub is not None:
            pairs.append((key, _owner_json(sub)))
        elif name in CUSTOMER_SCALARS and sub is None:
            pairs.append((key, CUSTOMER_SCALARS[name]()))
        else:
            raise NotCompilable(f"Customer.{name}")
    return json_object(pairs)
