"""Validation of customer input, shared by GraphQL, web forms and imports."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.customers.identity import (
    credit_code_problem,
    phone_problem,
    resident_id_facts,
    resident_id_problem,
)
from tenantcrm.customers.regions import REGIONS
from tenantcrm.messages import N_
from tenantcrm.pii.masking import normalize_national_id, normalize_phone
from tenantcrm.validation import FieldError, InvalidInput

KINDS = ("individual", "enterprise")
RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("prospect", "active", "settled", "closed")
GENDERS = ("male", "female")
MARITAL_STATUSES = ("single", "married", "divorced", "widowed")
CREDIT_GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D")
SOURCES = ("walk_in", "referral", "online", "partner", "marketing", "import", "other")
INDIVIDUAL_ONLY = ("gender", "birth_date", "marital_status")
CREDIT_SCORE_MAX = 1000
TAGS_MAX = 20
TAG_MAX = 30
TEXT_MAX = 100
NAME_MAX = 200
INCOME_MAX = Decimal("1000000000000")
WAN = Decimal(10000)  # 万: officers write amounts in ten-thousands
PII_FIELDS = ("national_id", "phone", "email", "address")
ADDRESS_MAX = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def strip_control(value: str) -> str:
    """Drop control characters (NUL and friends), which PostgreSQL text cannot hold anyway."""
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def clean_text(value: Any) -> str:
    """NFKC folds full-width digits and letters (common in pasted Chinese text); trim spaces;
    drop control characters."""
    if value is None:
        return ""
    return strip_control(unicodedata.normalize("NFKC", str(value))).strip()


def clean_prose(value: Any) -> str:
    """Free text as written: full-width punctuation (，。：) kept, which NFKC would turn into ASCII;
    line breaks kept, other control characters dropped; trimmed."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def choice_of(raw: Any, field: str, allowed: tuple[str, ...], errors: list[FieldError]) -> str:
    """The cleaned, lower-cased value, or an invalid_choice error on `field` when not allowed."""
    value = clean_text(raw).lower()
    if value not in allowed:
        errors.append(FieldError(field, "invalid_choice", N_("Choose one of the listed values.")))
    return value


def limited_text(
    raw: Any, field: str, limit: int, errors: list[FieldError], *, required: bool = False
) -> str:
    """Free text of at most `limit` characters (and not empty when required)."""
    text = clean_prose(raw)
    if required and not text:
        errors.append(FieldError(field, "required", N_("This field is required.")))
    elif len(text) > limit:
        errors.append(
            FieldError(
                field, "too_long", N_("Too long ({limit} characters at most)."), params={"limit": str(limit)}
            )
        )
    return text


def _text(value: Any) -> str:
    """Like clean_text but keeping control characters, so a field can refuse them by name."""
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


def parse_amount(value: Any) -> Decimal:
    """Yuan as officers type it: "3,000,000", "¥3000000.00" or "300万"; raises ValueError."""
    if isinstance(value, float):
        raise ValueError("float money")
    text = clean_text(value).replace("元", "")
    if text.endswith(("万", "w", "W")):
        amount = parse_money(text[:-1]) * WAN
        if amount >= INCOME_MAX or amount != amount.quantize(Decimal("0.01")):
            raise ValueError("out of range")
        return amount.quantize(Decimal("0.01"))
    return parse_money(text)


def validate_customer(
    data: Mapping[str, Any],
    *,
    partial: bool = False,
    current_kind: str | None = None,
    locked_facts: tuple[date | None, str | None] | None = None,
) -> dict[str, Any]:
    """Clean values for the given fields, or InvalidInput listing every problem.

    With `partial` (an update), absent fields are left alone and required ones may not be
    emptied; otherwise absent choices take their defaults. PII comes back normalised and in
    clear: the service encrypts it. `current_kind` is the stored kind, for an update that
    changes the identity number but not the kind. `locked_facts` are the stored birth date
    and gender when a resident ID is on file: they were derived from it and may not drift.
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
    for field in ("monthly_income", "assets", "liabilities"):
        if given(field):
            clean[field] = _optional_money(field, data.get(field), errors)
    if given("risk_level"):
        choice("risk_level", RISK_LEVELS, "low")
    if given("status"):
        choice("status", STATUSES, "prospect")
    _validate_profile(data, given, clean, errors)
    kind = clean.get("kind") or current_kind or "individual"
    _validate_pii(data, given, kind, clean, errors)
    _check_identity_facts(kind, clean, locked_facts, errors)

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


def _optional_money(field: str, raw: Any, errors: list[FieldError]) -> Decimal | None:
    if raw is None or _text(raw) == "":
        return None
    try:
        return parse_amount(raw)
    except ValueError:
        errors.append(
            FieldError(
                field, "invalid_amount", N_("Enter an amount in yuan, 0 or more, with at most two decimals.")
            )
        )
        return None


def parse_date(value: Any) -> date:
    """A calendar date from a date or an ISO string (2024-03-01, also 2024/3/1); raises ValueError."""
    if isinstance(value, date):
        return value
    text = _text(value).replace("/", "-").replace(".", "-")
    parts = text.split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        raise ValueError("not a date")
    return date(int(parts[0]), int(parts[1]), int(parts[2]))


def parse_tags(value: Any) -> list[str]:
    """Tags from a list or a comma-separated string (，、 too): trimmed, de-duplicated, in order."""
    items = value if isinstance(value, list | tuple) else re.split(r"[,，、;；]", _text(value))
    tags: list[str] = []
    for item in items:
        tag = " ".join(_text(item).split())
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _validate_profile(
    data: Mapping[str, Any], given: Any, clean: dict[str, Any], errors: list[FieldError]
) -> None:
    """Optional profile fields: gender, birth date, marital status, occupation, industry,
    credit score and grade, tags, source."""

    def optional_choice(field: str, allowed: tuple[str, ...], *, upper: bool = False) -> None:
        text = _text(data.get(field))
        if not text:
            clean[field] = None
            return
        text = text.upper() if upper else text.lower()
        if text not in allowed:
            errors.append(FieldError(field, "invalid_choice", N_("Choose one of the listed values.")))
        clean[field] = text

    for field, allowed in (("gender", GENDERS), ("marital_status", MARITAL_STATUSES), ("source", SOURCES)):
        if given(field):
            optional_choice(field, allowed)
    if given("credit_grade"):
        optional_choice("credit_grade", CREDIT_GRADES, upper=True)
    for field in ("occupation", "industry"):
        if given(field):
            text = " ".join(_text(data.get(field)).split())
            if _has_control(text):
                errors.append(
                    FieldError(field, "invalid_characters", N_("Contains characters that are not allowed."))
                )
            elif len(text) > TEXT_MAX:
                errors.append(FieldError(field, "too_long", N_("Too long (100 characters at most).")))
            clean[field] = text or None
    if given("birth_date"):
        raw = data.get("birth_date")
        clean["birth_date"] = None
        if raw is not None and _text(raw):
            try:
                born = parse_date(raw)
                if not date(1900, 1, 1) <= born <= date.today():
                    raise ValueError("out of range")
                clean["birth_date"] = born
            except ValueError:
                errors.append(
                    FieldError(
                        "birth_date", "invalid_date", N_("Enter a real date (YYYY-MM-DD), not in the future.")
                    )
                )
    if given("credit_score"):
        raw = _text(data.get("credit_score"))
        clean["credit_score"] = None
        if raw:
            if not raw.isdigit() or int(raw) > CREDIT_SCORE_MAX:
                errors.append(
                    FieldError("credit_score", "invalid_score", N_("Enter a whole number from 0 to 1000."))
                )
            else:
                clean["credit_score"] = int(raw)
    if given("key_customer"):
        raw = data.get("key_customer")
        clean["key_customer"] = raw is True or _text(raw).lower() in ("1", "true", "on", "yes", "是")
    if given("tags"):
        tags = parse_tags(data.get("tags"))
        if len(tags) > TAGS_MAX or any(len(tag) > TAG_MAX or _has_control(tag) for tag in tags):
            errors.append(
                FieldError("tags", "invalid_tags", N_("At most 20 tags of up to 30 characters each."))
            )
        clean["tags"] = tags


def _check_identity_facts(
    kind: str,
    clean: dict[str, Any],
    locked_facts: tuple[date | None, str | None] | None,
    errors: list[FieldError],
) -> None:
    """Gender and birth date belong to individuals, and agree with the resident ID number."""
    if kind == "enterprise":
        for field in INDIVIDUAL_ONLY:
            if clean.get(field):
                errors.append(
                    FieldError(field, "individual_only", N_("Only individual customers have this field."))
                )
            clean[field] = None
        return
    national_id = clean.get("national_id")
    if national_id and not resident_id_problem(national_id):
        facts: tuple[date | None, str | None] | None = resident_id_facts(national_id)
    elif "national_id" in clean:
        facts = None  # the ID number is being cleared or is invalid (reported already)
    else:
        facts = locked_facts
    if facts is None:
        return
    born, gender = facts
    for field, derived in (("birth_date", born), ("gender", gender)):
        if field in clean and clean[field] is not None and clean[field] != derived:
            errors.append(
                FieldError(field, "identity_mismatch", N_("Does not match the resident ID number."))
            )
        elif field in clean or "national_id" in clean:
            clean[field] = derived  # left empty, or a new ID number: taken from the ID
