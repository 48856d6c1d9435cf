"""Contact pages: log a contact and plan follow-ups from the customer page, my day, tick follow-ups off."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from tenantcrm.auth.service import active_users
from tenantcrm.contacts.service import FOLLOW_UP_SORTS, ContactService
from tenantcrm.customers.service import CustomerService
from tenantcrm.validation import InvalidInput
from tenantcrm.web.customers import render_customer
from tenantcrm.web.rendering import form_values, is_htmx, page
from tenantcrm.web.scope import WebScope

INTERACTION_FIELDS = ("at", "channel", "summary", "next_step", "follow_up_on")
FOLLOW_UP_FIELDS = ("due_on", "channel", "note", "assignee_id")


def _sort_link(base: str, name: str, field: str, descending: bool) -> str:
    """A header's link: ascending first, turned round when the list is already so."""
    turned = name == field and not descending
    return f"{base}?{urlencode({'sort': name, 'direction': 'desc' if turned else 'asc'})}"


def _local_time(raw: str) -> str | datetime:
    """A datetime-local box sends no zone: read it in the server's zone, the one its default came
    from. Anything else goes to the service as typed, to be refused there."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return parsed if parsed.tzinfo else parsed.astimezone()


def _customer_tab(scope: WebScope, customer_id: object, tab: str) -> str:
    return f"/t/{scope.tenant.slug}/customers/{customer_id}?tab={tab}"


class ContactPages(Controller):
    path = "/t/{slug:str}"

    @post("/customers/{customer_id:str}/interactions", name="interaction_create")
    async def log_interaction(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        values = await form_values(request, INTERACTION_FIELDS)
        data: dict[str, Any] = {**values, "at": _local_time(values["at"]) if values["at"] else None}
        service = ContactService(web_scope.session, web_scope.principal)
        try:
            interaction = await service.log_interaction(customer_id, data)
        except InvalidInput as invalid:
            return await render_customer(
                request,
                web_scope,
                customer_id,
                "timeline",
                status_code=422,
                interaction_values=values,
                interaction_errors=invalid,
            )
        return Redirect(
            f"{_customer_tab(web_scope, interaction.customer_id, 'timeline')}#entry-{interaction.id}",
            status_code=303,
        )

    @post("/customers/{customer_id:str}/follow-ups", name="follow_up_create")
    async def plan_follow_up(self, request: Request, web_scope: WebScope, customer_id: str) -> Response:
        values = await form_values(request, FOLLOW_UP_FIELDS)
        service = ContactService(web_scope.session, web_scope.principal)
        try:
            follow_up = await service.plan_follow_up(customer_id, values)
        except InvalidInput as invalid:
            return await render_customer(
                request,
                web_scope,
                customer_id,
                "timeline",
                status_code=422,
                follow_up_values=values,
                follow_up_errors=invalid,
            )
        return Redirect(
            f"{_customer_tab(web_scope, follow_up.customer_id, 'timeline')}#follow-up-{follow_up.id}",
            status_code=303,
        )

    @get("/my-day", name="my_day")
    async def my_day(
        self, request: Request, web_scope: WebScope, sort: str | None = None, direction: str | None = None
    ) -> Response:
        """The follow-ups soonest due first, or as a header was clicked (?sort=customer&direction=...)."""
        field = sort if sort in FOLLOW_UP_SORTS else "due_on"
        descending = direction == "desc"
        day = await ContactService(web_scope.session, web_scope.principal).my_day(
            sort=field, descending=descending
        )
        base = f"/t/{web_scope.tenant.slug}/my-day"
        return page(
            request,
            "contacts/my_day.html",
            day=day,
            sort=field,
            direction="desc" if descending else "asc",
            sort_links={name: _sort_link(base, name, field, descending) for name in FOLLOW_UP_SORTS},
            slug=web_scope.tenant.slug,
        )

    @post("/follow-ups/{follow_up_id:str}/done", name="follow_up_done")
    async def done(self, request: Request, web_scope: WebScope, follow_up_id: str) -> Response:
        """htmx swaps the row for its done state; without JS, back to where the button was."""
        on_customer = (await request.form()).get("next") == "customer"
        follow_up = await ContactService(web_scope.session, web_scope.principal).complete_follow_up(
            follow_up_id
        )
        if not is_htmx(request):
            target = (
                _customer_tab(web_scope, follow_up.customer_id, "timeline")
                if on_customer
                else f"/t/{web_scope.tenant.slug}/my-day"
            )
            return Redirect(target, status_code=303)
        customer = await CustomerService(web_scope.session, web_scope.principal).get_customer(
            follow_up.customer_id
        )
        return page(
            request,
            "contacts/_follow_up_row.html",
            follow_up=follow_up,
            customer_name=customer.name,
            overdue_days=0,
            users=dict(await active_users(web_scope.session)) if on_customer else {},
            on_customer=on_customer,
            slug=web_scope.tenant.slug,
        )
