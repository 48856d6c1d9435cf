"""Validation of collateral and appraisal input, shared by GraphQL and web forms."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tenantcrm.customers.inputs import clean_text, parse_amount, parse_date
from tenantcrm.customers.regions import REGIONS
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput

KINDS = ("residence", "commercial", "land", "vehicle", "equipment", "deposit")
TITLE_STATUSES = ("clear", "mortgaged", "pending", "disputed", "seized")
AREA_MAX = Decimal("10000000")
AMOUNT_MESSAGE = N_("Enter an amount in yuan, 0 or more, with at most two decimals.")


def validate_collateral(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Clean collateral fields (and, on create, its first appraisal), or InvalidInput."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}

    def given(field: str) -> bool:
        return field in data or not partial

    if given("kind"):
        kind = clean_text(data.get("kind")).lower()
        if kind not in KINDS:
            errors.append(FieldError("kind", "invalid_choice", N_("Choose one of the listed values.")))
        clean["kind"] = kind
    for field, limit in (("description", 500), ("location", 200)):
        if given(field):
            text = " ".join(clean_text(data.get(field)).split())
            if len(text) > limit:
                errors.append(FieldError(field, "too_long", N_("Too long.")))
            clean[field] = text
    if given("region_code"):
        code = clean_text(data.get("region_code"))
        if code and code not in REGIONS:
            errors.append(FieldError("region_code", "unknown_region", N_("Unknown region.")))
        clean["region_code"] = code or None
    if given("area_m2"):
        raw = clean_text(data.get("area_m2")).replace(",", "").removesuffix("m²").removesuffix("平方米")
        clean["area_m2"] = None
        if raw:
            try:
                area = Decimal(raw)
                if not area.is_finite() or not 0 < area < AREA_MAX or area != area.quantize(Decimal("0.01")):
                    raise ValueError("out of range")
                clean["area_m2"] = area
            except (InvalidOperation, ValueError):
                errors.append(
                    FieldError("area_m2", "invalid_area", N_("Enter the area in square metres, more than 0."))
                )
    if given("title_status"):
        status = clean_text(data.get("title_status") or "clear").lower()
        if status not in TITLE_STATUSES:
            errors.append(
                FieldError("title_status", "invalid_choice", N_("Choose one of the listed values."))
            )
        clean["title_status"] = status
    if given("lien_order"):
        given_order = data.get("lien_order")
        # Only a missing order means a first lien: 0 (an int from GraphQL) is refused, not read as 1.
        raw = "1" if given_order is None or given_order == "" else clean_text(given_order)
        if not raw.isdigit() or not 1 <= int(raw) <= 9:
            errors.append(
                FieldError("lien_order", "invalid_lien_order", N_("Enter a lien order from 1 to 9."))
            )
        else:
            clean["lien_order"] = int(raw)
    if not partial:
        try:
            clean.update(validate_appraisal(data))
        except InvalidInput as invalid:
            errors.extend(invalid.errors)
    if errors:
        raise InvalidInput(errors)
    return clean


def validate_appraisal(data: Mapping[str, Any]) -> dict[str, Any]:
    """An appraisal: value, date (not in the future) and who appraised."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    try:
        clean["appraised_value"] = parse_amount(data.get("appraised_value"))
    except ValueError:
        errors.append(FieldError("appraised_value", "invalid_amount", AMOUNT_MESSAGE))
    raw_date = data.get("appraised_on")
    try:
        appraised_on = parse_date(raw_date) if raw_date not in (None, "") else date.today()
        if appraised_on > date.today() or appraised_on.year < 1950:
            raise ValueError("out of range")
        clean["appraised_on"] = appraised_on
    except ValueError:
        errors.append(
            FieldError(
                "appraised_on", "invalid_date", N_("Enter a real date (YYYY-MM-DD), not in the future.")
            )
        )
    appraiser = " ".join(clean_text(data.get("appraiser")).split())
    if len(appraiser) > 200:
        errors.append(FieldError("appraiser", "too_long", N_("Too long.")))
    clean["appraiser"] = appraiser
    if errors:
        raise InvalidInput(errors)
    return clean
