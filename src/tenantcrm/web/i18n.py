"""Message catalogs (Babel .po files under web/locale) and locale negotiation."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"


@cache
def translations(locale_dir: Path, locale: str) -> NullTranslations:
    """Compiled in memory from the .po file, so no build step produces .mo files."""
    po_path = locale_dir / locale / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def negotiate(
    explicit: str | None, cookie: str | None, accept_language: str | None, default: str | None = None
) -> str:
    """The user's own choice, then this browser's, then the languages the browser asks for, then
    the tenant's default."""
    for candidate in (explicit, cookie):
        if candidate in LOCALES:
            return candidate
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return default if default in LOCALES else DEFAULT_LOCALE


def money(value: object, locale: str) -> str:
    if value is None:
        return ""
    return format_currency(value, "CNY", locale=locale)  # type: ignore[arg-type]


def number(value: object, locale: str) -> str:
    return "" if value is None else format_decimal(value, locale=locale)  # type: ignore[arg-type]


def percent(value: object, locale: str) -> str:
    """A ratio (0.6543) as a percentage with two decimals (65.43%)."""
    return "" if value is None else format_percent(value, format="#,##0.00%", locale=locale)  # type: ignore[arg-type]
