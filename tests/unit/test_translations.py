"""The zh_CN catalog covers every UI string, keeps placeholders, and loads at runtime.

No database: the msgids are extracted from the sources exactly as babel.cfg says
(`pybabel extract -F babel.cfg ... src web/templates`), plus the literal FieldError
messages of tenantcrm.customers.inputs, which templates translate with _(error.message).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tenantcrm.settings import REPO_ROOT
from tenantcrm.web.i18n import translations

LOCALE_DIR = REPO_ROOT / "web" / "locale"
ZH_CN_PO = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
SOURCE_DIRS = (REPO_ROOT / "src", REPO_ROOT / "web" / "templates")
# %(name)s, %s, %d, %.2f ...; "%%" is a literal percent sign and is ignored.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")


@cache
def extracted_msgids() -> dict[str, list[str]]:
    """msgid -> source locations, extracted with the mapping of babel.cfg."""
    parse_cfg = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
    with (REPO_ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_cfg(handle)
    found: dict[str, list[str]] = {}
    for source_dir in SOURCE_DIRS:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            source_dir, method_map, options_map
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                location = f"{source_dir.relative_to(REPO_ROOT)}/{filename}:{lineno}"
                found.setdefault(msgid, []).append(location)
    return found


def required_msgids() -> dict[str, list[str]]:
    return {msgid: list(where) for msgid, where in extracted_msgids().items()}


def zh_cn_catalog() -> Catalog:
    with ZH_CN_PO.open("rb") as handle:
        return read_po(handle, locale="zh_CN")


def placeholders(text: str) -> Counter[str]:
    return Counter(match.group(0) for match in PLACEHOLDER.finditer(text) if match.group(0) != "%%")


def test_extraction_finds_template_python_and_validation_strings() -> None:
    msgids = extracted_msgids()
    assert "Customers" in msgids  # a template string
    locations = [where.rsplit(":", 1)[0] for found in msgids.values() for where in found]
    assert any(path.endswith(".py") for path in locations)  # a gettext call in Python
    # Validation messages are marked with N_ where written and translated where shown.
    assert "Name is required." in msgids


def test_every_msgid_has_a_zh_cn_translation() -> None:
    catalog = zh_cn_catalog()
    missing = []
    for msgid, where in sorted(required_msgids().items()):
        message = catalog.get(msgid)
        if message is None or message.fuzzy or not str(message.string or "").strip():
            state = "absent" if message is None else ("fuzzy" if message.fuzzy else "empty")
            missing.append(f"  {msgid!r} ({state}; {', '.join(where)})")
    assert not missing, (
        f"{len(missing)} msgid(s) lack a zh_CN translation in {ZH_CN_PO}:\n"
        + "\n".join(missing)
        + "\nRefresh with the commands at the top of babel.cfg, then translate."
    )


def test_placeholders_match_between_msgid_and_translation() -> None:
    mismatched = []
    for message in zh_cn_catalog():
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        expected = placeholders(ids[0])
        for string in strings:
            if string and placeholders(string) != expected:
                mismatched.append(f"  {ids[0]!r} -> {string!r}")
    assert not mismatched, "placeholders differ between msgid and msgstr:\n" + "\n".join(mismatched)


def test_placeholder_pattern() -> None:
    assert placeholders("%(count)s customers") == Counter({"%(count)s": 1})
    assert placeholders("共 %(count)s 个客户") == Counter({"%(count)s": 1})
    assert placeholders("100%% of %s, %.2f") == Counter({"%s": 1, "%.2f": 1})


def test_runtime_translations_use_the_catalog() -> None:
    zh = translations(LOCALE_DIR, "zh_CN")
    assert zh.gettext("Customers") == "客户"
    plural = ("%(count)s customer", "%(count)s customers")
    assert zh.ngettext(*plural, 1234) % {"count": "1,234"} == "共 1,234 个客户"
    # English is the source language: no catalog needed, msgids come back unchanged.
    en = translations(LOCALE_DIR, "en")
    assert en.gettext("Customers") == "Customers"
    assert en.ngettext(*plural, 1) % {"count": 1} == "1 customer"
    assert en.ngettext(*plural, 2) % {"count": 2} == "2 customers"
