"""Validation of customer input, shared by GraphQL, web forms and imports."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.customers.regions import REGIONS
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput

KINDS = ("individual", "enterprise")
RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("prospect", "active", "settled", "closed")
NAME_MAX = 200
INCOME_MAX = Decimal("1000000000000")
FIELDS = ("kind", "name", "region_code", "monthly_income", "risk_level", "status")


def strip_control(value: str) -> str:
    """Drop control characters (NUL and friends), which PostgreSQL text cannot hold anyway."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _text(value: Any) -> str:
    """NFKC folds full-width digits and letters (common in pasted Chinese text); trim spaces."""
    if value is None:
        return ""
    return unicodedata.normalize("NFKC", str(value)).strip()


def _choice(field: str, value: Any, allowed: tuple[str, ...], errors: list[FieldError]) -> str | None:
    cleaned = _text(value).lower()
    if cleaned not in allowed:
        errors.append(FieldError(field, "invalid_choice", N_("Choose one of the listed values.")))
        return None
    return cleaned


def parse_money(value: Any) -> Decimal:
    """A non-negative amount in yuan with at most two decimals; raises ValueError."""
    if isinstance(value, float):
        raise ValueError("float money")  # never trust a binary float for money
    cleaned = _text(value).replace(",", "").replace("¥", "").replace("￥", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    if not amount.is_finite() or amount < 0 or amount >= INCOME_MAX:
        raise ValueError("out of range")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("too many decimals")
    return abs(amount).quantize(Decimal("0.01"))  # abs: "-0" is zero, not negative zero


def validate_customer(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Clean values for the given fields, or InvalidInput listing every problem.

    With `partial` (an update), absent fields are left alone and required ones may not be
    emptied; otherwise absent choices take their defaults.
    """
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}

    def given(field: str) -> bool:
        return field in data or not partial

    def choice(field: str, allowed: tuple[str, ...], default: str) -> None:
        raw = data.get(field)
        if raw is None or _text(raw) == "":
            if partial:
                errors.append(FieldError(field, "required", N_("This field is required.")))
                return
            raw = default
        clean[field] = _choice(field, raw, allowed, errors)

    if given("kind"):
        choice("kind", KINDS, "individual")
    if given("name"):
        name = " ".join(_text(data.get("name")).split())
        if _has_control(name):
            errors.append(
                FieldError("name", "invalid_characters", N_("Name contains characters that are not allowed."))
            )
        elif not name:
            errors.append(FieldError("name", "required", N_("Name is required.")))
        elif len(name) > NAME_MAX:
            errors.append(FieldError("name", "too_long", N_("Name is too long (200 characters at most).")))
        clean["name"] = name
    if given("region_code"):
        code = _text(data.get("region_code"))
        if code and code not in REGIONS:
            errors.append(FieldError("region_code", "unknown_region", N_("Unknown region.")))
        clean["region_code"] = code or None
    if given("monthly_income"):
        raw = data.get("monthly_income")
        if raw is None or _text(raw) == "":
            clean["monthly_income"] = None
        else:
            try:
                clean["monthly_income"] = parse_money(raw)
            except ValueError:
                errors.append(
                    FieldError(
                        "monthly_income",
                        "invalid_amount",
                        N_("Enter an amount in yuan, 0 or more, with at most two decimals."),
                    )
                )
    if given("risk_level"):
        choice("risk_level", RISK_LEVELS, "low")
    if given("status"):
        choice("status", STATUSES, "prospect")

    if errors:
        raise InvalidInput(errors)
    return clean
