"""Validation of loan, repayment and classification input, shared by GraphQL and web forms."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.customers.inputs import WAN, clean_text, parse_amount, parse_date
from tenantcrm.loans.ledger import CLASSES
from tenantcrm.loans.schedule import MAX_AMOUNT, MAX_TERM_MONTHS, METHODS, add_months
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

CHANNELS = ("bank_transfer", "auto_debit", "cash", "wechat", "alipay", "other")
FLAGS = ("restructured", "litigation", "bankruptcy", "fraud", "guarantor_default", "collateral_impaired")
PRODUCT_MAX = 100
REASON_MIN, REASON_MAX = 3, 1000
AMOUNT_MESSAGE = N_("Enter an amount in yuan, e.g. 3000000 or 300万.")
DATE_MESSAGE = N_("Enter a date as YYYY-MM-DD.")
TOO_LARGE_MESSAGE = N_("A loan must be less than {maximum} yuan.")


def parse_loan_amount(value: Any, field: str = "amount") -> Decimal:
    """A loan amount as officers type it ("300万", "3,000,000") or as GraphQL sends it (a
    Decimal): more than 0 and below the schedule's maximum, checked here so the pages, the
    calculator and GraphQL refuse it alike; raises InvalidInput naming `field`."""
    try:
        amount = parse_amount(value)
    except ValueError:
        amount = None
    if (amount is None and _beyond_maximum(value)) or (amount is not None and amount >= MAX_AMOUNT):
        raise InvalidInput(
            [FieldError(field, "too_large", TOO_LARGE_MESSAGE, params={"maximum": f"{MAX_AMOUNT:,}"})]
        )
    if amount is None or amount <= 0:
        raise InvalidInput([FieldError(field, "invalid_amount", AMOUNT_MESSAGE)])
    return amount


def _beyond_maximum(value: Any) -> bool:
    """Whether a refused amount was a number, in yuan or 万, too large rather than malformed."""
    text = clean_text(value).replace("元", "").replace(",", "").lstrip("¥￥")
    wan = text.endswith(("万", "w", "W"))
    try:
        number = Decimal(text[:-1] if wan else text)
    except InvalidOperation:
        return False
    if not number.is_finite() or number <= 0:
        return False
    if number.adjusted() > MAX_AMOUNT.adjusted() + 1:  # 1e999999999 overflows a multiplication
        return True
    return number * (WAN if wan else 1) >= MAX_AMOUNT


def parse_rate(value: Any) -> Decimal:
    """An annual rate as a fraction (0.049 for 4.9%); "4.9%" is read as percent; raises ValueError."""
    text = clean_text(value)
    percent = text.endswith("%")
    try:
        rate = Decimal(text.rstrip("%").strip())
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    if not rate.is_finite():
        raise ValueError("not a number")
    return rate / 100 if percent else rate


def _date(field: str, raw: Any, errors: list[FieldError]) -> date | None:
    try:
        return parse_date(raw)
    except (ValueError, TypeError):
        errors.append(FieldError(field, "invalid_date", DATE_MESSAGE))
        return None


def validate_loan(data: Mapping[str, Any]) -> dict[str, Any]:
    """Clean loan terms, or InvalidInput naming every bad field. Schedule limits (amount, rate,
    term) are those of loans.schedule.check_terms, reported here in the user's language."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    product = " ".join(clean_text(data.get("product")).split())
    if not product:
        errors.append(FieldError("product", "required", N_("This field is required.")))
    elif len(product) > PRODUCT_MAX:
        errors.append(FieldError("product", "too_long", N_("Too long (100 characters at most).")))
    clean["product"] = product
    try:
        clean["amount"] = parse_loan_amount(data.get("amount"))
    except InvalidInput as invalid:
        errors.extend(invalid.errors)
    try:
        rate = parse_rate(data.get("annual_rate"))
        if not 0 <= rate < 1 or rate != rate.quantize(Decimal("0.000001")):
            raise ValueError("out of range")
        clean["annual_rate"] = rate
    except ValueError:
        errors.append(
            FieldError(
                "annual_rate",
                "invalid_rate",
                N_("The annual rate must be from 0 up to 100 percent, with at most four decimals."),
            )
        )
    term = clean_text(data.get("term_months"))
    if not term.isdigit() or not 1 <= int(term) <= MAX_TERM_MONTHS:
        errors.append(FieldError("term_months", "invalid_term", N_("The term must be 1 to 480 months.")))
    else:
        clean["term_months"] = int(term)
    method = clean_text(data.get("method")).lower()
    if method not in METHODS:
        errors.append(FieldError("method", "invalid_choice", N_("Choose one of the listed values.")))
    clean["method"] = method
    start = _date("start_date", data.get("start_date"), errors)
    if start is not None:
        if not date(1990, 1, 1) <= start <= add_months(date.today(), 12):
            errors.append(
                FieldError(
                    "start_date", "invalid_date", N_("The start date must be after 1990 and within a year.")
                )
            )
        clean["start_date"] = start
    raw_first = data.get("first_due_date")
    if raw_first in (None, "") and start is not None:
        clean["first_due_date"] = add_months(start, 1)
    elif raw_first not in (None, ""):
        first = _date("first_due_date", raw_first, errors)
        if first is not None and start is not None and not start < first <= add_months(start, 12):
            errors.append(
                FieldError(
                    "first_due_date",
                    "invalid_first_due_date",
                    N_("The first due date must fall after the start date and within 12 months of it."),
                )
            )
        clean["first_due_date"] = first
    clean["collateral_ids"] = _ids(data.get("collateral_ids"), errors)
    clean["flags"] = _flags(data.get("flags"), errors)
    if errors:
        raise InvalidInput(errors)
    return clean


def _ids(raw: Any, errors: list[FieldError]) -> list[Any]:
    items = [] if raw in (None, "") else raw if isinstance(raw, list | tuple) else [raw]
    ids = []
    for item in items:
        parsed = parse_uuid(item)
        if parsed is None:
            errors.append(
                FieldError("collateral_ids", "invalid_choice", N_("Choose one of the listed values."))
            )
            return []
        if parsed not in ids:
            ids.append(parsed)
    return ids


def _flags(raw: Any, errors: list[FieldError]) -> list[str]:
    items = [] if raw in (None, "") else raw if isinstance(raw, list | tuple) else [raw]
    flags = []
    for item in items:
        flag = clean_text(item).lower()
        if flag not in FLAGS:
            errors.append(FieldError("flags", "invalid_choice", N_("Choose one of the listed values.")))
            return []
        if flag not in flags:
            flags.append(flag)
    return flags


def validate_flags(raw: Any) -> list[str]:
    errors: list[FieldError] = []
    flags = _flags(raw, errors)
    if errors:
        raise InvalidInput(errors)
    return flags


def validate_repayment(data: Mapping[str, Any], *, start_date: date) -> dict[str, Any]:
    """Amount, date (from the loan's start up to today), channel and an optional reference."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    try:
        amount = parse_amount(data.get("amount"))
        if amount <= 0:
            raise ValueError("zero")
        clean["amount"] = amount
    except ValueError:
        errors.append(FieldError("amount", "invalid_amount", AMOUNT_MESSAGE))
    paid_on = _date("paid_on", data.get("paid_on") or date.today().isoformat(), errors)
    if paid_on is not None:
        if not start_date <= paid_on <= date.today():
            errors.append(
                FieldError(
                    "paid_on",
                    "invalid_paid_on",
                    N_("The date must be on or after the loan's start and not in the future."),
                )
            )
        clean["paid_on"] = paid_on
    channel = clean_text(data.get("channel") or "bank_transfer").lower()
    if channel not in CHANNELS:
        errors.append(FieldError("channel", "invalid_choice", N_("Choose one of the listed values.")))
    clean["channel"] = channel
    reference = " ".join(clean_text(data.get("reference")).split())
    if len(reference) > 100:
        errors.append(FieldError("reference", "too_long", N_("Too long (100 characters at most).")))
    clean["reference"] = reference
    if errors:
        raise InvalidInput(errors)
    return clean


def validate_reason(raw: Any) -> str:
    reason = " ".join(clean_text(raw).split())
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise InvalidInput([FieldError("reason", "required", N_("Give a reason (3 to 1000 characters)."))])
    return reason


def validate_classification(raw: Any) -> str:
    value = clean_text(raw).lower()
    if value not in CLASSES:
        raise InvalidInput(
            [FieldError("classification", "invalid_choice", N_("Choose one of the listed values."))]
        )
    return value


def validate_rules(rows: Any) -> list[tuple[str, int | None, str | None]]:
    """Classification rules as (class, minimum days past due, flag) with exactly one condition."""
    errors: list[FieldError] = []
    rules: list[tuple[str, int | None, str | None]] = []
    for index, row in enumerate(rows or []):
        classification = clean_text(row.get("classification")).lower()
        dpd_raw = clean_text(row.get("min_days_past_due"))
        flag = clean_text(row.get("flag")).lower() or None
        if classification not in CLASSES or classification == "normal":
            errors.append(
                FieldError(
                    f"rules.{index}.classification", "invalid_choice", N_("Choose one of the listed values.")
                )
            )
            continue
        if bool(dpd_raw) == bool(flag):
            errors.append(
                FieldError(
                    f"rules.{index}",
                    "one_condition",
                    N_("Each rule needs either a number of days past due or a flag, not both."),
                )
            )
            continue
        if dpd_raw and (not dpd_raw.isdigit() or not 1 <= int(dpd_raw) <= 10000):
            errors.append(
                FieldError(
                    f"rules.{index}.min_days_past_due",
                    "invalid_days",
                    N_("Enter whole days from 1 to 10000."),
                )
            )
            continue
        if flag is not None and flag not in FLAGS:
            errors.append(
                FieldError(f"rules.{index}.flag", "invalid_choice", N_("Choose one of the listed values."))
            )
            continue
        rule = (classification, int(dpd_raw) if dpd_raw else None, flag)
        if rule not in rules:
            rules.append(rule)
    if errors:
        raise InvalidInput(errors)
    return rules
