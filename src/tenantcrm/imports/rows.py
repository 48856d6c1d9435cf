"""One sheet row to what the import stages: clean customer values (PII apart), parsed collateral
and loan, notes, and every problem by field, code and message id (never the refused value)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.collateral.inputs import validate_collateral
from tenantcrm.customers.inputs import PII_FIELDS, clean_text, validate_customer
from tenantcrm.customers.regions import REGIONS
from tenantcrm.customers.service import MASKS
from tenantcrm.imports.fields import (
    CUSTOMER_FIELDS,
    IGNORE,
    LOAN_FIELDS,
    NOTE,
    is_blank,
    word,
)
from tenantcrm.imports.parsing import parse_collateral, parse_financial, parse_loan
from tenantcrm.loans.inputs import validate_loan
from tenantcrm.loans.schedule import EQUAL_INSTALLMENT
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput

NOTES_MAX = 4000
SECURED_PRODUCT = "抵押贷款"  # product names are the tenant's data, in the sheets' language
UNSECURED_PRODUCT = "信用贷款"
_REGION_SUFFIXES = re.compile(r"(市|省|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$")


def _region_names() -> list[tuple[str, str]]:
    """(name, code), cities before provinces, longer names first: "武汉市" wins over "湖北省"."""
    names = []
    for code, (zh, en) in REGIONS.items():
        for name in {zh, _REGION_SUFFIXES.sub("", zh), en.lower()}:
            if len(name) >= 2:
                names.append((name, code))
    return sorted(names, key=lambda item: (item[1].endswith("0000"), -len(item[0])))


_REGION_NAMES = _region_names()


def region_from_text(text: str, *, head: int | None = 12) -> str | None:
    """The region a region cell or an address names ("上海市黄浦区..." is 310000)."""
    text = clean_text(text)
    if text in REGIONS:
        return text
    window = text[:head].lower() if head else text.lower()
    return next((code for name, code in _REGION_NAMES if name in window), None)


@dataclass
class RowOutcome:
    """A row read and validated; `customer` is JSON-ready and holds no PII (that is in `pii`)."""

    row_number: int
    name: str
    customer: dict[str, Any] = field(default_factory=dict)
    pii: dict[str, str] = field(default_factory=dict)
    masked: dict[str, str] = field(default_factory=dict)
    collateral: dict[str, Any] | None = None
    loan: dict[str, Any] | None = None
    errors: list[FieldError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def values(self) -> dict[str, Any]:
        """What import_rows.values stores: no clear PII, only its masked forms."""
        return {
            "name": self.name,
            "customer": self.customer,
            "masked": self.masked,
            "collateral": self.collateral,
            "loan": self.loan,
        }


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: str(value) if isinstance(value, Decimal | date) else value
        for key, value in values.items()
        if key not in ("collateral_ids", "flags")
    }


def _prefixed(prefix: str, errors: Sequence[FieldError]) -> list[FieldError]:
    return [FieldError(f"{prefix}.{e.field}", e.code, e.message, e.params) for e in errors]


def _rate(raw: str) -> str:
    """A rate cell: "5.5%" as written; a bare number of 1 or more is a percent (5.5), below 1 a
    fraction (0.055), as sheets hold both."""
    text = clean_text(raw)
    if text.endswith("%"):
        return text
    try:
        return f"{text}%" if Decimal(text) >= 1 else text
    except InvalidOperation:
        return text


def read_row(
    row_number: int,
    cells: Sequence[str | None],
    columns: Mapping[int, str],
    headers: Sequence[str],
    *,
    kind: str,
    today: date,
) -> RowOutcome | None:
    """The row's outcome, or None for a blank row (nothing but ignored or empty cells)."""
    raw: dict[str, str] = {}
    labels: dict[str, str] = {}
    notes: list[str] = []
    for index, target in columns.items():
        value = cells[index] if index < len(cells) else None
        if target == IGNORE or is_blank(value):
            continue
        header = headers[index] if index < len(headers) else ""
        if target == NOTE:
            text = " ".join(clean_text(value).split())
            notes.append(f"{header}: {text}" if header else text)
        else:
            raw[target], labels[target] = str(value), header
    if not raw and not notes:
        return None

    def keep(target: str, text: str) -> None:
        if text and not is_blank(text):
            notes.append(f"{labels[target]}: {text}" if labels[target] else text)

    outcome = RowOutcome(row_number, " ".join(clean_text(raw.get("name")).split())[:200])
    data = {name: word(name, raw[name]) for name in CUSTOMER_FIELDS if name in raw}
    if "region_code" in data:
        data["region_code"] = region_from_text(data["region_code"], head=None) or data["region_code"]
    elif "address" in data:
        data["region_code"] = region_from_text(data["address"])
    if "financial_status" in raw:
        parsed = parse_financial(raw["financial_status"])
        if "monthly_income" not in data and "monthly_income" in parsed.values:
            data["monthly_income"] = parsed.values["monthly_income"]
            keep("financial_status", parsed.rest)
        else:
            keep("financial_status", clean_text(raw["financial_status"]))
    collateral = _collateral(raw, outcome, keep, today)
    loan_data, loan_rest = _loan_data(raw, collateral is not None, today)
    if loan_data is None:
        for target in ("loan_text", *LOAN_FIELDS):
            if target in raw:
                keep(target, clean_text(raw[target]))
        if kind == "loans":
            outcome.errors.append(FieldError("loan", "missing", N_("This row has no loan amount.")))
    else:
        if "loan_text" in raw:
            keep("loan_text", loan_rest)
        if "status" not in data:
            data["status"] = "active"  # as LoanService.create_loan turns a prospect with a loan active
    data.setdefault("source", "import")
    try:
        clean = validate_customer(data)
    except InvalidInput as invalid:
        outcome.errors[:0] = invalid.errors
    else:
        for name in PII_FIELDS:
            value = clean.pop(name)
            if value:
                outcome.pii[name], outcome.masked[name] = value, MASKS[name](value)
        outcome.customer = jsonable(clean)
    if collateral is not None:
        outcome.collateral = collateral
    if loan_data is not None:
        try:
            outcome.loan = jsonable(validate_loan(loan_data))
        except InvalidInput as invalid:
            outcome.errors += _prefixed("loan", invalid.errors)
    if outcome.errors:
        for name in PII_FIELDS:  # masked only, for the preview; the value itself is not kept
            if name in raw and name not in outcome.masked:
                outcome.masked[name] = MASKS[name](clean_text(raw[name]))
    outcome.notes = notes
    return outcome


def _collateral(raw: Mapping[str, str], outcome: RowOutcome, keep: Any, today: date) -> dict[str, Any] | None:
    if "collateral_text" not in raw:
        return None
    parsed = parse_collateral(raw["collateral_text"])
    if not parsed.values:
        keep("collateral_text", parsed.rest)
        return None
    values = {**parsed.values, "appraised_on": today.isoformat()}
    if location := values.get("location"):
        values["region_code"] = region_from_text(location)
    try:
        return jsonable(validate_collateral(values))
    except InvalidInput as invalid:
        outcome.errors += _prefixed("collateral", invalid.errors)
        return None


def _loan_data(raw: Mapping[str, str], secured: bool, today: date) -> tuple[dict[str, Any] | None, str]:
    """Loan terms from the loan columns, else from the loan text, with what the text had besides;
    None when there is no amount."""
    values: dict[str, Any] = {}
    rest = ""
    if "loan_text" in raw:
        parsed = parse_loan(raw["loan_text"])
        values.update(parsed.values)
        rest = parsed.rest
    if "loan_amount" in raw:
        values["amount"] = raw["loan_amount"]
    if "amount" not in values:
        return None, rest
    if "loan_rate" in raw:
        values["annual_rate"] = _rate(raw["loan_rate"])
    if "loan_term_months" in raw:
        values["term_months"] = clean_text(raw["loan_term_months"])
    elif "loan_term_years" in raw:
        years = clean_text(raw["loan_term_years"])
        values["term_months"] = str(int(years) * 12) if years.isdigit() else years
    if "loan_method" in raw:
        values["method"] = word("loan_method", raw["loan_method"])
    values.setdefault("method", EQUAL_INSTALLMENT)
    values["start_date"] = raw.get("loan_start_date") or today.isoformat()
    values["product"] = raw.get("loan_product") or (SECURED_PRODUCT if secured else UNSECURED_PRODUCT)
    return values, rest


def notes_text(notes: Sequence[str]) -> str:
    text = "; ".join(notes)
    return text if len(text) <= NOTES_MAX else text[: NOTES_MAX - 1] + "…"
