"""Validation of customer input, shared by GraphQL, web forms and imports."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.customers.identity import credit_code_problem, phone_problem, resident_id_problem
from tenantcrm.customers.regions import REGIONS
from tenantcrm.messages import N_
from tenantcrm.pii.masking import normalize_national_id, normalize_phone
from tenantcrm.validation import FieldError, InvalidInput

KINDS = ("individual", "enterprise")
RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("prospect", "active", "settled", "closed")
NAME_MAX = 200
INCOME_MAX = Decimal("1000000000000")
PII_FIELDS = ("national_id", "phone", "email", "address")
ADDRESS_MAX = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


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


def validate_customer(
    data: Mapping[str, Any], *, partial: bool = False, current_kind: str | None = None
) -> dict[str, Any]:
    """Clean values for the given fields, or InvalidInput listing every problem.

    With `partial` (an update), absent fields are left alone and required ones may not be
    emptied; otherwise absent choices take their defaults. PII comes back normalised and in
    clear: the service encrypts it. `current_kind` is the stored kind, for an update that
    changes the identity number but not the kind.
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
    _validate_pii(data, given, clean.get("kind") or current_kind or "individual", clean, errors)

    if errors:
        raise InvalidInput(errors)
    return clean


def _validate_pii(
    data: Mapping[str, Any], given: Any, kind: str, clean: dict[str, Any], errors: list[FieldError]
) -> None:
    """Identity number by kind (resident ID or credit code), phone, e-mail, address."""

    def optional(field: str) -> str | None:
        text = _text(data.get(field))
        if _has_control(text):
            errors.append(
                FieldError(field, "invalid_characters", N_("Contains characters that are not allowed."))
            )
            return None
        return text or None

    if given("national_id") and (value := optional("national_id")) is not None:
        value = normalize_national_id(value)
        if kind == "enterprise":
            if credit_code_problem(value):
                errors.append(
                    FieldError(
                        "national_id",
                        "invalid_credit_code",
                        N_("Enter a valid 18-character unified social credit code."),
                    )
                )
        elif problem := resident_id_problem(value):
            message = {
                "format": N_("Enter an 18-digit resident ID number."),
                "birth_date": N_("The birth date in this ID number is not a real date."),
                "check_digit": N_("The check digit of this ID number is wrong."),
            }[problem]
            errors.append(FieldError("national_id", f"invalid_{problem}", message))
        clean["national_id"] = value
    elif given("national_id"):
        clean["national_id"] = None
    if given("phone") and (value := optional("phone")) is not None:
        value = normalize_phone(value)
        if phone_problem(value):
            errors.append(
                FieldError(
                    "phone",
                    "invalid_phone",
                    N_("Enter a mainland mobile (11 digits) or landline with area code."),
                )
            )
        clean["phone"] = value
    elif given("phone"):
        clean["phone"] = None
    if given("email") and (value := optional("email")) is not None:
        value = value.lower()
        if not EMAIL.fullmatch(value) or len(value) > 254:
            errors.append(FieldError("email", "invalid_email", N_("Enter a valid e-mail address.")))
        clean["email"] = value
    elif given("email"):
        clean["email"] = None
    if given("address") and (value := optional("address")) is not None:
        value = " ".join(value.split())
        if len(value) > ADDRESS_MAX:
            errors.append(
                FieldError("address", "too_long", N_("Address is too long (200 characters at most)."))
            )
        clean["address"] = value
    elif given("address"):
        clean["address"] = None
