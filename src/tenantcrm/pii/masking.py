"""Masked display of PII, and the normalised forms blind indexes are computed over."""

from __future__ import annotations

import re
import unicodedata

_NON_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")
_INTERNATIONAL_CN = re.compile(r"^(?:\+|00)86")
EMAIL_STARS = 7  # a fixed count, so the mask does not tell the length of the name


def normalize_national_id(value: str) -> str:
    """Resident ID or unified social credit code: NFKC (full-width to ASCII), no spaces, upper case."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value)).upper()


def normalize_phone(value: str) -> str:
    """Mobile: its 11 digits. Landline: `area-number` (e.g. 021-12345678). Else the digits."""
    text = _SPACES.sub("", unicodedata.normalize("NFKC", value))
    international = bool(_INTERNATIONAL_CN.match(text))
    digits = _NON_DIGITS.sub("", _INTERNATIONAL_CN.sub("", text))
    if not international and len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    if len(digits) == 11 and digits.startswith("1"):
        return digits
    if international and not digits.startswith("0"):
        digits = "0" + digits  # +86 21 ... dials 021 ... at home
    if digits.startswith("0") and len(digits) > 4:
        # Area codes: 010 and 02x have three digits, every other one four.
        area = 3 if digits[1] in "12" else 4
        return f"{digits[:area]}-{digits[area:]}"
    return digits


def mask_national_id(value: str) -> str:
    """First 4 and last 4 kept, the rest starred, same length: 3701**********1234."""
    value = normalize_national_id(value)
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    """Mobile 138****5678; landline 021-****5678 (area code and last 4 kept)."""
    phone = normalize_phone(value)
    if len(phone) == 11 and phone.startswith("1"):
        return phone[:3] + "****" + phone[-4:]
    area, _, number = phone.rpartition("-")
    if len(number) <= 4:
        return (area + "-" if area else "") + "*" * len(number)
    return (area + "-" if area else "") + "*" * (len(number) - 4) + number[-4:]


def mask_email(value: str) -> str:
    """First letter of the name and the domain: z*******@example.com."""
    name, at, domain = value.strip().rpartition("@")
    if not at:
        return value.strip()[:1] + "*" * EMAIL_STARS
    return name[:1] + "*" * EMAIL_STARS + "@" + domain


def mask_address(value: str) -> str:
    """The first 6 characters (province, city, district) then ****."""
    value = value.strip()
    if not value:
        return ""
    keep = 6 if len(value) > 6 else len(value) // 2
    return value[:keep] + "****"
