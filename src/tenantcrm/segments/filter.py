"""Segment filter trees: validated against a whitelist of fields, compiled to SQLAlchemy expressions."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true

from tenantcrm.customers.inputs import CREDIT_GRADES, KINDS, RISK_LEVELS, STATUSES, TAG_MAX
from tenantcrm.customers.models import Customer
from tenantcrm.customers.regions import REGIONS
from tenantcrm.loans.ledger import BUCKETS, CLASSES
from tenantcrm.loans.models import CustomerLoanSummary as Summary
from tenantcrm.loans.models import Loan
from tenantcrm.loans.service import BUCKET_DAYS, days_past_due_sql, outstanding_principal_sql
from tenantcrm.messages import N_
from tenantcrm.risk.models import EarlyWarning, RiskCase
from tenantcrm.validation import FieldError, InvalidInput

MAX_DEPTH = 6
MAX_CONDITIONS = 50
MAX_LIST = 100
MAX_JSON_CHARS = 20_000
MAX_SHOWN = 40  # characters of a refused field name or operator echoed back in a message
AMOUNT_MAX = Decimal("1e16")
LIVE_LOANS = ("active", "written_off")  # as the dashboard and early warning count them
OPEN_CASES = ("open", "in_progress")
PRODUCT_MAX = 100

OPERATORS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "contains")
ORDERING = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
CHOICE_OPS = ("eq", "ne", "in")


@dataclass(frozen=True, slots=True)
class Field:
    """One field a filter may name: its value type and the operators it accepts."""

    name: str
    type: str  # choice | int | decimal | date | bool | uuid | text | text_array
    ops: tuple[str, ...]
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("kind", "choice", CHOICE_OPS, KINDS),
        Field("status", "choice", CHOICE_OPS, STATUSES),
        Field("regionCode", "choice", CHOICE_OPS, tuple(REGIONS)),
        Field("riskLevel", "choice", CHOICE_OPS, RISK_LEVELS),
        Field("creditGrade", "choice", CHOICE_OPS, CREDIT_GRADES),
        Field("creditScore", "int", (*ORDERING, "in"), low=0, high=1000),
        Field("monthlyIncome", "decimal", ORDERING),
        Field("tags", "text_array", ("contains", "in")),
        Field("ownerId", "uuid", CHOICE_OPS),
        Field("teamId", "uuid", CHOICE_OPS),
        Field("createdAt", "date", ("eq", "gt", "gte", "lt", "lte", "between")),
        Field("daysSinceLastContact", "int", ORDERING, low=0, high=100_000),
        Field("outstandingBalance", "decimal", ORDERING),
        Field("classification", "choice", CHOICE_OPS, CLASSES),
        Field("daysPastDue", "int", ORDERING, low=0, high=100_000),
        Field("arrearsBucket", "choice", CHOICE_OPS, BUCKETS),
        Field("product", "text", ("eq", "ne", "in", "contains")),
        Field("hasOpenRiskCase", "bool", ("eq", "ne")),
        Field("flagged", "bool", ("eq", "ne")),
    )
}


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: str
    value: Any  # typed: str, int, Decimal, date, bool, UUID, or a tuple of them (in, between, tags)


@dataclass(frozen=True, slots=True)
class Group:
    kind: str  # and | or
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Condition | Group | Not
EVERYTHING = Group("and", ())


def _where(path: str) -> str:
    return path or "$"


def _refuse(code: str, message: str, path: str, **params: Any) -> InvalidInput:
    shown = {key: str(value)[:MAX_SHOWN] for key, value in params.items()}
    return InvalidInput([FieldError("filter", code, message, {"path": _where(path), **shown})])


def parse_filter(raw: object) -> Node:
    """The validated tree of a filter given as JSON text or already-decoded JSON; InvalidInput
    (field "filter") names where in the tree the first problem is."""
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_JSON_CHARS:
            raise _refuse("too_large", N_("{path}: the filter is too large."), "")
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            raise _refuse("invalid_json", N_("{path}: the filter is not valid JSON."), "") from None
    counter = [0]
    return _parse(raw, "", 1, counter)


def _parse(raw: object, path: str, depth: int, counter: list[int]) -> Node:
    if not isinstance(raw, dict) or not raw:
        raise _refuse(
            "invalid_shape",
            N_("{path}: expected a group (and, or, not) or a condition (field, op, value)."),
            path,
        )
    keys = set(raw)
    if len(keys) == 1 and keys <= {"and", "or", "not"}:
        if depth > MAX_DEPTH:
            raise _refuse(
                "too_deep", N_("{path}: groups nest at most {max} levels deep."), path, max=MAX_DEPTH
            )
        (kind,) = keys
        prefix = f"{path}." if path else ""
        if kind == "not":
            return Not(_parse(raw["not"], f"{prefix}not", depth + 1, counter))
        items = raw[kind]
        if not isinstance(items, list):
            raise _refuse("invalid_shape", N_("{path}: a group takes a list of conditions."), path)
        if kind == "or" and not items:
            raise _refuse("empty_group", N_("{path}: an OR group needs at least one condition."), path)
        children = tuple(
            _parse(item, f"{prefix}{kind}[{index}]", depth + 1, counter) for index, item in enumerate(items)
        )
        return Group(kind, children)
    if keys == {"field", "op", "value"} or keys == {"field", "op"}:
        counter[0] += 1
        if counter[0] > MAX_CONDITIONS:
            raise _refuse(
                "too_many_conditions",
                N_("{path}: a filter has at most {max} conditions."),
                path,
                max=MAX_CONDITIONS,
            )
        return _condition(raw, path)
    raise _refuse(
        "invalid_shape",
        N_("{path}: expected a group (and, or, not) or a condition (field, op, value)."),
        path,
    )


def _condition(raw: dict[str, Any], path: str) -> Condition:
    name, op = raw["field"], raw["op"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise _refuse("unknown_field", N_("{path}: unknown field '{name}'."), path, name=name)
    if not isinstance(op, str) or op not in OPERATORS:
        raise _refuse("unknown_operator", N_("{path}: unknown operator '{op}'."), path, op=op)
    if op not in spec.ops:
        raise _refuse(
            "operator_not_allowed",
            N_("{path}: {name} does not take the operator '{op}'."),
            path,
            name=name,
            op=op,
        )
    if "value" not in raw:
        raise _refuse("missing_value", N_("{path}: {name} needs a value."), path, name=name)
    value = raw["value"]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _refuse("invalid_between", N_("{path}: between takes [low, high]."), path)
        low, high = (_scalar(spec, item, path) for item in value)
        if low > high:
            raise _refuse("invalid_between", N_("{path}: between takes [low, high]."), path)
        return Condition(name, op, (low, high))
    if op == "in" or (spec.type == "text_array" and isinstance(value, list)):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
            raise _refuse("invalid_list", N_("{path}: give a list of 1 to {max} values."), path, max=MAX_LIST)
        items = tuple(dict.fromkeys(_scalar(spec, item, path) for item in value))
        return Condition(name, op, items)
    if spec.type == "text_array":
        return Condition(name, op, (_scalar(spec, value, path),))
    return Condition(name, op, _scalar(spec, value, path))


def _scalar(spec: Field, value: Any, path: str) -> Any:
    parse = _PARSERS[spec.type]
    parsed = parse(spec, value)
    if parsed is None:
        raise _refuse(
            f"invalid_{spec.type}", _VALUE_MESSAGES[spec.type], path, name=spec.name, **_bounds(spec)
        )
    return parsed


def _bounds(spec: Field) -> dict[str, Any]:
    return {"low": spec.low, "high": spec.high} if spec.type == "int" else {}


def _choice(spec: Field, value: Any) -> str | None:
    return value if isinstance(value, str) and value in spec.choices else None


def _int(spec: Field, value: Any) -> int | None:
    # isascii: "²" and "①" are digits to str.isdigit() but not to int().
    if (
        isinstance(value, str)
        and value.strip().isascii()
        and value.strip().isdigit()
        and len(value.strip()) <= 9
    ):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        return None
    return value


def _decimal(spec: Field, value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str) or len(str(value)) > 30:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= AMOUNT_MAX:
        return None
    return amount.quantize(Decimal("0.01"))


def _date(spec: Field, value: Any) -> date | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _bool(spec: Field, value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(value) if isinstance(value, str) else None


def _uuid(spec: Field, value: Any) -> uuid.UUID | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _text(spec: Field, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    limit = TAG_MAX if spec.type == "text_array" else PRODUCT_MAX
    if not 1 <= len(text) <= limit or any(ord(ch) < 32 for ch in text):
        return None
    return text


_PARSERS: dict[str, Callable[[Field, Any], Any]] = {
    "choice": _choice,
    "int": _int,
    "decimal": _decimal,
    "date": _date,
    "bool": _bool,
    "uuid": _uuid,
    "text": _text,
    "text_array": _text,
}
_VALUE_MESSAGES = {
    "choice": N_("{path}: choose {name} from the listed values."),
    "int": N_("{path}: {name} needs a whole number from {low} to {high}."),
    "decimal": N_("{path}: {name} needs an amount."),
    "date": N_("{path}: {name} needs a date (YYYY-MM-DD)."),
    "bool": N_("{path}: {name} needs true or false."),
    "uuid": N_("{path}: {name} needs an id."),
    "text": N_("{path}: {name} needs text of 1 to 100 characters."),
    "text_array": N_("{path}: {name} needs tags of 1 to 30 characters."),
}


# --- back to JSON ---


def to_raw(node: Node) -> dict[str, Any]:
    """The JSON form of a validated tree (what is stored for a saved segment)."""
    if isinstance(node, Not):
        return {"not": to_raw(node.child)}
    if isinstance(node, Group):
        return {node.kind: [to_raw(child) for child in node.children]}
    value = node.value
    if isinstance(value, tuple):
        if FIELDS[node.field].type == "text_array" and node.op == "contains" and len(value) == 1:
            return {"field": node.field, "op": node.op, "value": _json_value(value[0])}
        return {"field": node.field, "op": node.op, "value": [_json_value(item) for item in value]}
    return {"field": node.field, "op": node.op, "value": _json_value(value)}


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal | date | uuid.UUID):
        return str(value)
    return value


def conditions_of(node: Node) -> list[Condition]:
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return conditions_of(node.child)
    return [condition for child in node.children for condition in conditions_of(child)]


# --- SQL ---


def compile_filter(node: Node, as_of: date, *, stored: bool = False) -> ColumnElement[bool]:
    """A WHERE clause over `Customer`: values are bound parameters, field names pick code, never SQL text.
    Every condition is two-valued (never NULL), so NOT is the exact complement. With `stored`,
    outstanding balance, days past due, arrears bucket and class read customer_loan_summary
    (ADR 0010): only right for an `as_of` of today or later, when no repayment is dated after it."""
    if isinstance(node, Not):
        return not_(compile_filter(node.child, as_of, stored=stored))
    if isinstance(node, Group):
        if not node.children:
            return true() if node.kind == "and" else false()
        parts = [compile_filter(child, as_of, stored=stored) for child in node.children]
        return and_(*parts) if node.kind == "and" else or_(*parts)
    if stored and node.field in _STORED_COMPILERS:
        return _STORED_COMPILERS[node.field](node, as_of)
    return _COMPILERS[node.field](node, as_of)


def _compare(expression: Any, op: str, value: Any, *, nullable: bool) -> ColumnElement[bool]:
    if op == "ne":
        return expression.is_distinct_from(value)
    if op == "eq":
        condition = expression == value
    elif op == "in":
        condition = expression.in_(list(value))
    elif op == "gt":
        condition = expression > value
    elif op == "gte":
        condition = expression >= value
    elif op == "lt":
        condition = expression < value
    elif op == "lte":
        condition = expression <= value
    elif op == "between":
        condition = expression.between(value[0], value[1])
    else:  # pragma: no cover - parse_filter refuses it first
        raise ValueError(op)
    return and_(expression.is_not(None), condition) if nullable else condition


def _column(column: Any, nullable: bool) -> Callable[[Condition, date], ColumnElement[bool]]:
    def compile_column(node: Condition, as_of: date) -> ColumnElement[bool]:
        return _compare(column, node.op, node.value, nullable=nullable)

    return compile_column


def _live_loan(*conditions: Any) -> ColumnElement[bool]:
    return exists().where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOANS), *conditions)


def _any_loan(*conditions: Any) -> ColumnElement[bool]:
    return exists().where(Loan.customer_id == Customer.id, *conditions)


def outstanding_balance_sql(as_of: date) -> Any:
    """The customer's outstanding principal over live loans as of a date (0 without any)."""
    return (
        select(func.coalesce(func.sum(outstanding_principal_sql(as_of)), 0))
        .where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOANS))
        .correlate(Customer)
        .scalar_subquery()
    )


def max_days_past_due_sql(as_of: date) -> Any:
    """The worst days past due over the customer's live loans (0 without any)."""
    return (
        select(func.coalesce(func.max(days_past_due_sql(as_of)), 0))
        .where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOANS))
        .correlate(Customer)
        .scalar_subquery()
    )


def _outstanding(node: Condition, as_of: date) -> ColumnElement[bool]:
    balance = _compare(outstanding_balance_sql(as_of), node.op, node.value, nullable=False)
    # Only customers with a live loan can owe more than nothing: a semi-join narrows first.
    low = node.value[0] if node.op == "between" else node.value
    if (node.op in ("gt", "gte", "between", "eq") and low > 0) or (node.op == "gt" and low >= 0):
        return and_(_live_loan(), balance)
    return balance


def _worst_days(op: str, value: Any, over: Callable[[int], ColumnElement[bool]]) -> ColumnElement[bool]:
    """A comparison of the worst days past due, from `over(n)`: "the worst is more than n days"."""
    if op == "gt":
        return over(value)
    if op == "gte":
        return over(value - 1)
    if op == "lt":
        return not_(over(value - 1))
    if op == "lte":
        return not_(over(value))
    if op == "eq":
        return and_(over(value - 1), not_(over(value)))
    if op == "ne":
        return or_(not_(over(value - 1)), over(value))
    if op == "between":
        return and_(over(value[0] - 1), not_(over(value[1])))
    raise ValueError(op)  # pragma: no cover


def _max_dpd(op: str, value: Any, as_of: date) -> ColumnElement[bool]:
    """Days past due of the worst live loan, written as EXISTS over loans (semi-joins, not one
    aggregate per customer); a customer without live loans counts as 0 days."""
    dpd = days_past_due_sql(as_of)

    def over(days: int) -> ColumnElement[bool]:  # worst > days
        return _live_loan(dpd > days) if days >= 0 else true()

    return _worst_days(op, value, over)


def _days_past_due(node: Condition, as_of: date) -> ColumnElement[bool]:
    return _max_dpd(node.op, node.value, as_of)


def _bucket(bucket: str, as_of: date) -> ColumnElement[bool]:
    low, high = BUCKET_DAYS[bucket]
    return _max_dpd("gte", low, as_of) if high is None else _max_dpd("between", (low, high), as_of)


def _arrears_bucket(node: Condition, as_of: date) -> ColumnElement[bool]:
    if node.op == "in":
        return or_(*(_bucket(bucket, as_of) for bucket in node.value))
    matched = _bucket(node.value, as_of)
    return not_(matched) if node.op == "ne" else matched


def _classification(node: Condition, as_of: date) -> ColumnElement[bool]:
    if node.op == "in":
        return _live_loan(Loan.classification.in_(list(node.value)))
    matched = _live_loan(Loan.classification == node.value)
    return not_(matched) if node.op == "ne" else matched


def _product(node: Condition, as_of: date) -> ColumnElement[bool]:
    if node.op == "in":
        return _any_loan(Loan.product.in_(list(node.value)))
    if node.op == "contains":
        term = node.value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return _any_loan(Loan.product.ilike(f"%{term}%", escape="\\"))
    matched = _any_loan(Loan.product == node.value)
    return not_(matched) if node.op == "ne" else matched


def _flag(condition: Callable[[], ColumnElement[bool]]) -> Callable[[Condition, date], ColumnElement[bool]]:
    def compile_flag(node: Condition, as_of: date) -> ColumnElement[bool]:
        wanted = node.value if node.op == "eq" else not node.value
        return condition() if wanted else not_(condition())

    return compile_flag


def _open_case() -> ColumnElement[bool]:
    return exists().where(RiskCase.customer_id == Customer.id, RiskCase.status.in_(OPEN_CASES))


def _live_flag() -> ColumnElement[bool]:
    return exists().where(EarlyWarning.customer_id == Customer.id, EarlyWarning.cleared_at.is_(None))


def _tags(node: Condition, as_of: date) -> ColumnElement[bool]:
    tags = list(node.value)
    return Customer.tags.contains(tags) if node.op == "contains" else Customer.tags.overlap(tags)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _created(node: Condition, as_of: date) -> ColumnElement[bool]:
    """By calendar day (UTC, as the other day counts): lte a day includes all of that day."""
    at = Customer.created_at
    value = node.value
    if node.op == "between":
        return and_(at >= _midnight(value[0]), at < _midnight(value[1] + timedelta(days=1)))
    start, end = _midnight(value), _midnight(value + timedelta(days=1))
    return {
        "eq": lambda: and_(at >= start, at < end),
        "gt": lambda: at >= end,
        "gte": lambda: at >= start,
        "lt": lambda: at < start,
        "lte": lambda: at < end,
    }[node.op]()


def _since_contact(node: Condition, as_of: date) -> ColumnElement[bool]:
    """Whole days from the last contact's (UTC) day to `as_of`; a customer never contacted counts
    as contacted infinitely long ago, so "30 days or more" includes them."""
    last = Customer.last_contact_at

    def at_least(days: int) -> ColumnElement[bool]:  # contacted `days` or more days ago, or never
        return or_(last.is_(None), last < _midnight(as_of - timedelta(days=days - 1)))

    def at_most(days: int) -> ColumnElement[bool]:
        return and_(last.is_not(None), last >= _midnight(as_of - timedelta(days=days)))

    op, value = node.op, node.value
    if op == "gt":
        return at_least(value + 1)
    if op == "gte":
        return at_least(value)
    if op == "lt":
        return at_most(value - 1) if value > 0 else false()
    if op == "lte":
        return at_most(value)
    if op == "between":
        return and_(at_least(value[0]), at_most(value[1]))
    matched = and_(at_least(value), at_most(value))
    return not_(matched) if op == "ne" else matched


_COMPILERS: dict[str, Callable[[Condition, date], ColumnElement[bool]]] = {
    "kind": _column(Customer.kind, False),
    "status": _column(Customer.status, False),
    "regionCode": _column(Customer.region_code, True),
    "riskLevel": _column(Customer.risk_level, False),
    "creditGrade": _column(Customer.credit_grade, True),
    "creditScore": _column(Customer.credit_score, True),
    "monthlyIncome": _column(Customer.monthly_income, True),
    "tags": _tags,
    "ownerId": _column(Customer.owner_id, True),
    "teamId": _column(Customer.team_id, True),
    "createdAt": _created,
    "daysSinceLastContact": _since_contact,
    "outstandingBalance": _outstanding,
    "classification": _classification,
    "daysPastDue": _days_past_due,
    "arrearsBucket": _arrears_bucket,
    "product": _product,
    "hasOpenRiskCase": _flag(_open_case),
    "flagged": _flag(_live_flag),
}
assert set(_COMPILERS) == set(FIELDS)


# --- the same fields over customer_loan_summary (a row only for customers with a live loan) ---


def _summary(*conditions: Any) -> ColumnElement[bool]:
    return exists().where(Summary.customer_id == Customer.id, *conditions)


def _summary_holds(condition: ColumnElement[bool], holds_without_loans: bool) -> ColumnElement[bool]:
    """`condition` over the customer's row, where a customer without a row (no live loan) is the
    zero row: it matches exactly when the condition holds for owing nothing, 0 days past due."""
    if holds_without_loans:
        return not_(_summary(not_(condition)))
    return _summary(condition)


def _stored_outstanding(node: Condition, as_of: date) -> ColumnElement[bool]:
    condition = _compare(Summary.outstanding, node.op, node.value, nullable=False)
    return _summary_holds(condition, _holds(node.op, node.value, Decimal("0.00")))


def _holds(op: str, value: Any, figure: Any) -> bool:
    """Whether the condition holds for `figure` (what a customer without live loans has)."""
    if op == "between":
        return bool(value[0] <= figure <= value[1])
    return {
        "eq": figure == value,
        "ne": figure != value,
        "gt": figure > value,
        "gte": figure >= value,
        "lt": figure < value,
        "lte": figure <= value,
    }[op]


def _stored_max_dpd(op: str, value: Any, as_of: date) -> ColumnElement[bool]:
    """As _max_dpd: worst days past due > n is an unpaid instalment due before as_of - n."""

    def over(days: int) -> ColumnElement[bool]:  # worst > days
        if days < 0:
            return true()
        return _summary(Summary.oldest_unpaid_due < as_of - timedelta(days=days))

    return _worst_days(op, value, over)


def _stored_days_past_due(node: Condition, as_of: date) -> ColumnElement[bool]:
    return _stored_max_dpd(node.op, node.value, as_of)


def _stored_bucket(bucket: str, as_of: date) -> ColumnElement[bool]:
    low, high = BUCKET_DAYS[bucket]
    if high is None:
        return _stored_max_dpd("gte", low, as_of)
    return _stored_max_dpd("between", (low, high), as_of)


def _stored_arrears_bucket(node: Condition, as_of: date) -> ColumnElement[bool]:
    if node.op == "in":
        return or_(*(_stored_bucket(bucket, as_of) for bucket in node.value))
    matched = _stored_bucket(node.value, as_of)
    return not_(matched) if node.op == "ne" else matched


def _stored_classification(node: Condition, as_of: date) -> ColumnElement[bool]:
    if node.op == "in":
        return _summary(Summary.classes.overlap(list(node.value)))
    matched = _summary(Summary.classes.contains([node.value]))
    return not_(matched) if node.op == "ne" else matched


_STORED_COMPILERS: dict[str, Callable[[Condition, date], ColumnElement[bool]]] = {
    "outstandingBalance": _stored_outstanding,
    "daysPastDue": _stored_days_past_due,
    "arrearsBucket": _stored_arrears_bucket,
    "classification": _stored_classification,
}


def fields_in(nodes: Sequence[Node]) -> list[str]:
    """The distinct field names a tree uses, in order of appearance (for audit events)."""
    return list(dict.fromkeys(c.field for node in nodes for c in conditions_of(node)))
