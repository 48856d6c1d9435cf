"""Customer pages: list with search, filters, sorting and pages; detail with tabs; create and edit."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.auth.service import active_users
from tenantcrm.collateral.inputs import KINDS as COLLATERAL_KINDS
from tenantcrm.collateral.inputs import TITLE_STATUSES
from tenantcrm.collateral.service import CollateralService
from tenantcrm.complaints.service import CATEGORIES as COMPLAINT_CATEGORIES
from tenantcrm.complaints.service import KINDS as COMPLAINT_KINDS
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.service import CHANNELS, ContactService
from tenantcrm.customers.inputs import (
    CREDIT_GRADES,
    GENDERS,
    INDIVIDUAL_ONLY,
    KINDS,
    MARITAL_STATUSES,
    PII_FIELDS,
    RISK_LEVELS,
    SOURCES,
    STATUSES,
)
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import (
    SORT_FIELDS,
    CustomerFilter,
    CustomerOrder,
    CustomerService,
    InvalidCursor,
)
from tenantcrm.loans.schedule import METHODS
from tenantcrm.loans.service import LoanFilter, LoanService
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.saved_views.models import SavedView
from tenantcrm.saved_views.service import SavedViewService, spec_for
from tenantcrm.settings import Settings
from tenantcrm.timeline.service import TimelineService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.rendering import is_htmx, page
from tenantcrm.web.scope import WebScope
from tenantcrm.web.sealed import seal, unseal

RESULTS_TARGET = "customer-results"
PAGE_SIZE = 25
FORM_FIELDS = (
    "kind",
    "name",
    "gender",
    "birth_date",
    "marital_status",
    "region_code",
    "occupation",
    "industry",
    "source",
    "tags",
    "risk_level",
    "status",
    "monthly_income",
    "assets",
    "liabilities",
    "credit_score",
    "credit_grade",
)
TABS_TARGET = "customer-tabs"
TABS = ("profile", "financials", "collateral", "loans", "timeline", "complaints")
OLDER_TARGET = "timeline-older"
MORE_COMPLAINTS_TARGET = "complaints-more"
CUSTOMER_LOANS_SHOWN = 100
CUSTOMER_COMPLAINTS_SHOWN = 20
CUSTOMER_LIST = spec_for("customers")


def _columns(raw: Any) -> tuple[str, ...]:
    """Columns as the URL (`cols=a,b`) or the form (one `cols` per box) name them; unknown names
    are dropped, the required ones added, and nothing chosen means the standard columns."""
    names = raw.split(",") if isinstance(raw, str) else list(raw or ())
    chosen = {name for name in names if name in CUSTOMER_LIST.columns}
    if not chosen:
        return CUSTOMER_LIST.default_columns
    return tuple(c for c in CUSTOMER_LIST.columns if c in chosen or c in CUSTOMER_LIST.required)


@dataclass(frozen=True)
class ListView:
    """The list's state as it travels in the URL; the search term only ever sealed."""

    search: str = ""
    risk_level: str = ""
    status: str = ""
    sort: str = "created_at"
    direction: str = "desc"
    columns: tuple[str, ...] = CUSTOMER_LIST.default_columns

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ListView:
        return cls(
            search=str(values.get("search") or "")[:100],
            risk_level=v if (v := str(values.get("risk_level") or "")) in RISK_LEVELS else "",
            status=v if (v := str(values.get("status") or "")) in STATUSES else "",
            sort=v if (v := str(values.get("sort") or "")) in SORT_FIELDS else "created_at",
            direction="asc" if values.get("direction") == "asc" else "desc",
            columns=_columns(values.get("columns")),
        )

    @classmethod
    def from_saved(cls, saved: SavedView) -> ListView:
        return cls.from_values(
            {
                **saved.filters,
                "sort": saved.sort,
                "direction": "desc" if saved.descending else "asc",
                "columns": saved.columns,
            }
        )

    def without_search(self) -> ListView:
        return dataclasses.replace(self, search="")

    def query(self, secret_key: str, audience: str, **extra: str) -> str:
        params: dict[str, str] = {}
        if self.search:
            params["q"] = seal(secret_key, audience, {"search": self.search})
        if self.risk_level:
            params["risk_level"] = self.risk_level
        if self.status:
            params["status"] = self.status
        params["sort"], params["direction"] = self.sort, self.direction
        if self.columns != CUSTOMER_LIST.default_columns:
            params["cols"] = ",".join(self.columns)
        params.update({k: v for k, v in extra.items() if v})
        return urlencode(params)


def _service(scope: WebScope) -> CustomerService:
    return CustomerService(scope.session, scope.principal, scope.cipher)


def _audience(scope: WebScope) -> str:
    return f"{scope.tenant.id}|{scope.principal.user_id}"


async def _form_values(request: Request, *, editing: bool = False) -> dict[str, Any]:
    """The posted fields. On an edit, an empty PII box means "keep": the form never shows
    the stored clear value, so it cannot send it back."""
    form = await request.form()
    values = {name: form.get(name) for name in FORM_FIELDS}
    if values["kind"] == "enterprise":
        for name in INDIVIDUAL_ONLY:  # hidden for enterprises; a stale value must not refuse the form
            values.pop(name)
    for name in PII_FIELDS:
        value = str(form.get(name) or "").strip()
        if value or not editing:
            values[name] = value or None
    return values


def _form_page(
    request: Request,
    scope: WebScope,
    customer: Customer | None,
    values: dict[str, Any],
    invalid: InvalidInput | None = None,
) -> Response:
    """The create or edit form; refused input comes back with 422 and its messages."""
    return page(
        request,
        "customers/form.html",
        status_code=422 if invalid else 200,
        customer=customer,
        values=values,
        errors=invalid,
        slug=scope.tenant.slug,
        kinds=KINDS,
        risk_levels=RISK_LEVELS,
        statuses=STATUSES,
        genders=GENDERS,
        marital_statuses=MARITAL_STATUSES,
        sources=SOURCES,
        credit_grades=CREDIT_GRADES,
    )


async def _tab_context(
    scope: WebScope, customer: Customer, tab: str, before: str | None, after: str | None
) -> dict[str, Any]:
    """What one tab shows; only that tab's data is read."""
    loans = LoanService(scope.session, scope.principal)
    if tab == "financials":
        return {"exposure": await loans.customer_exposure(customer.id)}
    if tab == "collateral":
        service = CollateralService(scope.session, scope.principal)
        items = await service.list_for_customer(customer.id)
        linked = await loans.loans_for_collateral([item.id for item in items]) if items else {}
        distinct = list({loan.id: loan for group in linked.values() for loan in group}.values())
        return {
            "collateral": items,
            "linked_loans": linked,
            "loan_ltv": await loans.loan_to_value(distinct),
            "appraisals": await service.appraisals_for([item.id for item in items]),
            "collateral_kinds": COLLATERAL_KINDS,
            "title_statuses": TITLE_STATUSES,
        }
    if tab == "loans":
        result = await loans.list_loans(LoanFilter(customer_id=customer.id), first=CUSTOMER_LOANS_SHOWN)
        collateral = await CollateralService(scope.session, scope.principal).list_for_customer(customer.id)
        return {"loan_rows": result.rows, "loan_collateral": collateral, "methods": METHODS}
    if tab == "timeline":
        contacts = ContactService(scope.session, scope.principal)
        return {
            "timeline": await TimelineService(scope.session, scope.principal).page(
                customer.id, before=before
            ),
            "open_follow_ups": await contacts.follow_ups(customer.id, open_only=True),
            "users": dict(await active_users(scope.session)),
            "channels": CHANNELS,
        }
    if tab == "complaints":
        complaints = ComplaintService(scope.session, scope.principal)
        try:
            shown = await complaints.page_complaints(
                customer_ids=[customer.id], first=CUSTOMER_COMPLAINTS_SHOWN, after=after
            )
        except InvalidInput:  # a stale or edited "show more" link: from the start
            shown = await complaints.page_complaints(
                customer_ids=[customer.id], first=CUSTOMER_COMPLAINTS_SHOWN
            )
        return {
            "complaint_page": shown,
            "customer_loans": (await loans.loans_for_customers([customer.id]))[customer.id],
            "users": dict(await active_users(scope.session)),
            "complaint_kinds": COMPLAINT_KINDS,
            "complaint_categories": COMPLAINT_CATEGORIES,
        }
    return {}


async def _alerts(scope: WebScope, customer: Customer) -> dict[str, Any]:
    """Live early-warning flags and risk cases, shown above every tab."""
    warnings = await WarningService(scope.session, scope.principal).for_customers([customer.id])
    cases = await RiskCaseService(scope.session, scope.principal).cases_for_customers([customer.id])
    return {"warnings": warnings[customer.id], "risk_cases": cases[customer.id]}


def local_now() -> datetime:
    """Now in the server's zone, the zone the pages' dates (date.today()) are in."""
    return datetime.now().astimezone()


async def render_customer(
    request: Request,
    scope: WebScope,
    customer_id: str,
    tab: str | None = None,
    *,
    before: str | None = None,
    after: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The customer page on one tab (an htmx request aimed at the tabs gets only them, one aimed at
    the timeline's "Older" row only the next entries), with any refused form in `extra`."""
    tab = tab if tab in TABS else "profile"
    customer = await _service(scope).get_customer(customer_id)
    context = await _tab_context(scope, customer, tab, before, after)
    target = request.headers.get("hx-target") if is_htmx(request) else None
    base = f"/t/{scope.tenant.slug}/customers/{customer.id}"
    headers = None
    if target == OLDER_TARGET and tab == "timeline":
        template = "customers/_timeline_entries.html"
    elif target == MORE_COMPLAINTS_TARGET and tab == "complaints":
        template = "customers/_complaint_rows.html"
    elif target == TABS_TARGET:
        template = "customers/_tabs.html"
        headers = {"HX-Push-Url": f"{base}?tab={tab}"}
    else:
        template = "customers/detail.html"
        context.update(await _alerts(scope, customer))
    return page(
        request,
        template,
        status_code=status_code,
        headers=headers,
        customer=customer,
        slug=scope.tenant.slug,
        tab=tab,
        tabs=TABS,
        today=date.today(),
        now_local=local_now(),
        contact_channels=CHANNELS,
        **{"revealed": None, **context, **extra},
    )


async def render_list(
    request: Request,
    scope: WebScope,
    view: ListView,
    after: str | None = None,
    before: str | None = None,
    *,
    status_code: int = 200,
    view_values: dict[str, Any] | None = None,
    view_errors: InvalidInput | None = None,
) -> Response:
    """The customer list (or, for htmx aimed at it, its results) with the saved views bar; a
    refused "save view" form comes back in `view_values` and `view_errors`."""
    settings: Settings = request.app.state.settings
    base = f"/t/{scope.tenant.slug}/customers"
    service = _service(scope)
    saved_views = await SavedViewService(scope.session, scope.principal).views("customers")
    flt = CustomerFilter(
        search=view.search or None, risk_level=view.risk_level or None, status=view.status or None
    )
    order = CustomerOrder(view.sort, view.direction == "desc")
    try:
        result = await service.list_customers(
            filter=flt,
            order=order,
            after=after,
            before=before,
            first=None if before else PAGE_SIZE,
            last=PAGE_SIZE if before else None,
        )
    except InvalidCursor:  # a stale or edited link: show the first page of the same view
        after = before = None
        result = await service.list_customers(filter=flt, order=order, first=PAGE_SIZE)

    def link(**extra: str) -> str:
        return f"{base}?{view.query(settings.secret_key, _audience(scope), **extra)}"

    def sort_link(field: str) -> str:
        direction = "asc" if view.sort == field and view.direction == "desc" else "desc"
        flipped = dataclasses.replace(view, sort=field, direction=direction)
        query = flipped.query(settings.secret_key, _audience(scope))
        return f"{base}?{query}"

    def view_link(saved: SavedView) -> str:
        return f"{base}?{ListView.from_saved(saved).query(settings.secret_key, '')}"

    on_screen = view.without_search()
    active = next((str(v.id) for v in saved_views if ListView.from_saved(v) == on_screen), None)
    partial = request.headers.get("hx-target") == RESULTS_TARGET and is_htmx(request)
    push = link(after=after or "", before=before or "")
    return page(
        request,
        "customers/_results.html" if partial else "customers/list.html",
        status_code=status_code,
        headers={"HX-Push-Url": push} if partial else None,
        view=view,
        result=result,
        link=link,
        sort_link=sort_link,
        sortable=SORT_FIELDS,
        all_columns=CUSTOMER_LIST.columns,
        required_columns=CUSTOMER_LIST.required,
        saved_views=saved_views,
        view_link=view_link,
        standard_link=f"{base}?{ListView().query(settings.secret_key, '')}",
        active_view=active or ("standard" if on_screen == ListView() else None),
        view_values=view_values,
        view_errors=view_errors,
        slug=scope.tenant.slug,
        risk_levels=RISK_LEVELS,
        statuses=STATUSES,
    )


class CustomerPages(Controller):
    path = "/t/{slug:str}/customers"

    @get("/", name="customer_list")
    async def list_page(
        self,
        request: Request,
        web_scope: WebScope,
        q: str | None = None,
        risk_level: str | None = None,
        status: str | None = None,
        sort: str | None = None,
        direction: str | None = None,
        cols: str | None = None,
        after: str | None = None,
        before: str | None = None,
    ) -> Response:
        """The list as its URL says; with no parameters at all, as the user's default view says."""
        settings: Settings = request.app.state.settings
        if not request.query_params and (
            default := await SavedViewService(web_scope.session, web_scope.principal).default_view(
                "customers"
            )
        ):
            return await render_list(request, web_scope, ListView.from_saved(default))
        search = ""
        if q and (sealed := unseal(settings.secret_key, _audience(web_scope), q)):
            search = str(sealed.get("search", ""))
        view = ListView.from_values(
            {
                "search": search,
                "risk_level": risk_level,
                "status": status,
                "sort": sort,
                "direction": direction,
                "columns": cols,
            }
        )
        return await render_list(request, web_scope, view, after=after, before=before)

    @post("/", name="customer_search")
    async def search(self, request: Request, web_scope: WebScope) -> Response:
        """The search form posts, so the typed term never appears in a URL or access log."""
        settings: Settings = request.app.state.settings
        form = await request.form()
        view = ListView.from_values({**dict(form), "columns": form.getall("cols", [])})
        if is_htmx(request):
            return await render_list(request, web_scope, view)
        query = view.query(settings.secret_key, _audience(web_scope))
        return Redirect(f"{request.url.path}?{query}", status_code=303)

    @get("/new", name="customer_new")
    async def new_form(self, request: Request, web_scope: WebScope) -> Response:
        _service(web_scope).check_can_write()
        return _form_page(request, web_scope, None, {})

    @post("/new", name="customer_create")
    async def create(self, request: Request, web_scope: WebScope) -> Response:
        values = await _form_values(request)
        try:
            customer = await _service(web_scope).create_customer(values)
        except InvalidInput as invalid:
            return _form_page(request, web_scope, None, values, invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/customers/{customer.id}", status_code=303)

    @get("/{customer_id:str}", name="customer_detail")
    async def detail(
        self,
        request: Request,
        web_scope: WebScope,
        customer_id: str,
        tab: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Response:
        """Tabs are plain links (?tab=loans); htmx swaps only the tabs and pushes the same URL. The
        timeline's older entries are ?before=<time|entry id>, the complaints' next ones
        ?after=<complaint cursor>: cursors without personal data."""
        return await render_customer(request, web_scope, customer_id, tab, before=before, after=after)

    @post("/{customer_id:str}/reveal", name="customer_reveal")
    async def reveal(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        """Clear PII on this answer alone (no redirect, no-store), after logging who saw it and why."""
        service = _service(web_scope)
        form = await request.form()
        fields = [name for name in PII_FIELDS if form.get(name)] or list(PII_FIELDS)
        try:
            revealed = await service.reveal_pii(
                customer_id, fields, purpose=str(form.get("purpose") or ""), channel="web"
            )
        except InvalidInput as invalid:
            return await render_customer(
                request, web_scope, customer_id, status_code=422, reveal_errors=invalid
            )
        return await render_customer(request, web_scope, customer_id, revealed=revealed)

    @get("/{customer_id:str}/edit", name="customer_edit")
    async def edit_form(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        customer = await _service(web_scope).get_customer_for_edit(customer_id)
        values = {name: getattr(customer, name) for name in FORM_FIELDS}
        values["tags"] = ", ".join(customer.tags or [])
        return _form_page(request, web_scope, customer, values)

    @post("/{customer_id:str}/edit", name="customer_update")
    async def update(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        service = _service(web_scope)
        values = await _form_values(request, editing=True)
        try:
            customer = await service.update_customer(customer_id, values)
        except InvalidInput as invalid:
            return _form_page(request, web_scope, await service.get_customer(customer_id), values, invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/customers/{customer.id}", status_code=303)
