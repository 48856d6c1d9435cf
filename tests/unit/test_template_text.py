"""No template shows English the catalog cannot translate: every word of text a user reads (text
between tags, and the placeholder, title, aria-label, alt and label attributes) comes from `_()`
or `ngettext()`, or is one of the few names that are the same in both languages.

test_translations.py checks that every *marked* string has a zh-CN translation; this checks that
nothing is left unmarked. Jinja expressions and statements are removed before the HTML is read,
so what is left is the literal text of the template.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tenantcrm.settings import REPO_ROOT

TEMPLATES = REPO_ROOT / "web" / "templates"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
WORD = re.compile(r"[A-Za-z]{2,}")
SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "label"}
NOT_SHOWN = {"script", "style", "pre", "code"}  # code samples are not UI text
# Names, not words: the product, the language switch's own name for English, units and zones.
SAME_IN_BOTH = {"tenantcrm", "English", "UTC", "KB", "MB", "GraphQL", "GraphiQL", "API", "SDL"}
# What a block or macro writes into a tag (hx-history="false", aria-invalid="true"): not text.
ATTRIBUTE = re.compile(r'[\w:-]+="[^"]*"')


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in NOT_SHOWN:
            self._hidden += 1
        for name, value in attrs:
            if name in SHOWN_ATTRIBUTES and value:
                self._check(f'{name}="{value}"', value)

    def handle_endtag(self, tag: str) -> None:
        if tag in NOT_SHOWN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._check(data.strip(), ATTRIBUTE.sub("", data))

    def _check(self, shown: str, text: str) -> None:
        if set(WORD.findall(text)) - SAME_IN_BOTH:
            self.found.append((self.getpos()[0], shown))


def untranslated(source: str) -> list[tuple[int, str]]:
    """(line, text) of each piece of literal English in a template's source."""
    # Keep the line count, so a finding points at its line.
    parser = _Text()
    parser.feed(JINJA.sub(lambda m: "\n" * m.group(0).count("\n"), source))
    parser.close()
    return parser.found


def test_the_check_finds_literal_english_and_passes_marked_text() -> None:
    assert untranslated("<p>Saved views</p>") == [(1, "Saved views")]
    assert untranslated('<input placeholder="Search">') == [(1, 'placeholder="Search"')]
    assert untranslated("<h1>{{ _('Saved views') }}</h1>\n<p>Nothing\nhere</p>") == [(2, "Nothing\nhere")]
    assert untranslated("<p>{{ _('Saved views') }} · tenantcrm</p>") == []
    assert untranslated('{% block body_attrs %}hx-history="false"{% endblock %}') == []
    assert untranslated("<pre>curl -H 'Authorization: Bearer'</pre><p>中文</p>") == []


def test_no_template_shows_untranslated_english() -> None:
    found = [
        f"  {path.relative_to(REPO_ROOT)}:{line}: {text[:80]!r}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for line, text in untranslated(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "literal English in templates (wrap it in {{ _('...') }} and translate it in messages.po):\n"
        + "\n".join(found)
    )


def test_the_templates_are_found() -> None:
    assert len(list(TEMPLATES.rglob("*.html"))) > 50  # a wrong folder would check nothing
