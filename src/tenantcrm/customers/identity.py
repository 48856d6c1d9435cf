"""Chinese identity numbers: resident ID (GB 11643) and unified social credit code (GB 32100)."""

from __future__ import annotations

import re
from datetime import date

_RESIDENT_ID = re.compile(r"[1-9]\d{5}(\d{4})(\d{2})(\d{2})\d{3}[\dX]")
_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK = "10X98765432"

# GB 32100: 18 characters from this alphabet (no I, O, S, V, Z), the last a check character.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(r"[0-9A-HJ-NP-RTUWXY]{2}\d{6}[0-9A-HJ-NP-RTUWXY]{10}")

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0\d{2,3}-\d{7,8}")


def resident_id_problem(value: str) -> str | None:
    """Why an 18-digit resident ID is invalid (format, birth date, check digit), or None."""
    match = _RESIDENT_ID.fullmatch(value)
    if not match:
        return "format"
    try:
        born = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return "birth_date"
    if born > date.today() or born.year < 1900:
        return "birth_date"
    total = sum(int(d) * w for d, w in zip(value[:17], _RESIDENT_WEIGHTS, strict=True))
    return None if _RESIDENT_CHECK[total % 11] == value[17] else "check_digit"


def resident_id_facts(value: str) -> tuple[date, str]:
    """Birth date and gender ("male"/"female") encoded in a valid resident ID."""
    born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    return born, "male" if int(value[16]) % 2 else "female"


def credit_code_problem(value: str) -> str | None:
    """Why an 18-character unified social credit code is invalid, or None."""
    if not _USCC.fullmatch(value):
        return "format"
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(value[:17], _USCC_WEIGHTS, strict=True))
    check = _USCC_ALPHABET[(31 - total % 31) % 31]
    return None if check == value[17] else "check_digit"


def phone_problem(normalized: str) -> str | None:
    """Why a phone (already normalised by pii.masking.normalize_phone) is not a mainland
    mobile or landline, or None."""
    return None if _MOBILE.fullmatch(normalized) or _LANDLINE.fullmatch(normalized) else "format"
