"""Render a page or partial with the request's locale, helpers and safe headers."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Request
from litestar.response import Template

from tenantcrm.customers.regions import REGIONS, region_name
from tenantcrm.settings import Settings
from tenantcrm.web.i18n import LOCALES, money, negotiate, number, percent, translations

LANG_COOKIE = "tcrm_lang"
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def request_locale(request: Request) -> str:
    principal = request.scope.get("principal")  # type: ignore[call-overload]
    explicit = principal.locale if principal is not None else None
    default = principal.default_locale if principal is not None else None
    return negotiate(
        explicit, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"), default
    )


def gettext_for(request: Request):
    settings: Settings = request.app.state.settings
    return translations(settings.web_dir / "locale", request_locale(request)).gettext


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A template response; every tenant page is private (no-store) and varies on htmx."""
    settings: Settings = request.app.state.settings
    locale = request_locale(request)
    catalog = translations(settings.web_dir / "locale", locale)
    base: dict[str, Any] = {
        "_": catalog.gettext,
        "ngettext": catalog.ngettext,
        "locale": locale,
        "locales": LOCALES,
        "principal": request.scope.get("principal"),  # type: ignore[call-overload]
        "money": partial(money, locale=locale),
        "number": partial(number, locale=locale),
        "percent": partial(percent, locale=locale),
        "region_name": partial(region_name, locale=locale),
        "regions": sorted(REGIONS),
        "current_path": request.url.path,
    }
    return Template(
        template_name=template,
        context={**base, **context},
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Vary": "HX-Request, HX-Target",
            "Content-Security-Policy": PAGE_CSP,
            **(headers or {}),
        },
    )


async def form_values(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    """The posted text of the named fields ("" when missing), as services take them."""
    form = await request.form()
    return {name: str(form.get(name) or "") for name in fields}
