"""Relationship pages: log a contact, plan and tick off follow-ups, my day, the timeline, complaints,
and a customer's early-warning flags and risk cases, in zh-CN and English.

Every refused form answers 422 with its message beside the field and writes nothing; permissions
and record scope come from the services (403, 404).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import update

from tenantcrm.audit import service as audit
from tenantcrm.complaints.models import Complaint
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.models import FollowUp
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, principal_of, web_sign_in
from tests.integration.web.test_lending_pages import (
    HTMX,
    ZH,
    Book,
    overdue_start,
    post,
    rows_of,
    shows,
)


class Relationship(Book):
    """The contact, complaint and risk records of the tenant, read and seeded through the services."""

    async def interactions(self, customer_id) -> list:
        async with tenant_session(self.db, self.tenant) as session:
            return await ContactService(session, await self._principal()).interactions(customer_id, first=100)

    async def follow_ups(self, customer_id, *, open_only: bool = False) -> list:
        async with tenant_session(self.db, self.tenant) as session:
            service = ContactService(session, await self._principal())
            return await service.follow_ups(customer_id, open_only=open_only)

    async def plan(self, customer_id, **values) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            service = ContactService(session, await self._principal())
            data = {"due_on": date.today().isoformat(), "note": "回访", **values}
            return (await service.plan_follow_up(customer_id, data)).id

    async def log(self, customer_id, summary: str, **values) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            service = ContactService(session, await self._principal())
            data = {"channel": "phone", "summary": summary, **values}
            return (await service.log_interaction(customer_id, data)).id

    async def complaint(self, customer_id, **values) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            service = ComplaintService(session, await self._principal())
            data = {"category": "fees", "content": "收费不透明", **values}
            return (await service.record(customer_id, data)).id

    async def complaints(self, customer_id) -> list[Complaint]:
        async with tenant_session(self.db, self.tenant) as session:
            rows = await ComplaintService(session, await self._principal()).list_complaints(
                customer_ids=[customer_id]
            )
            return [row.complaint for row in rows]

    async def customer_row(self, customer_id) -> Customer:
        async with tenant_session(self.db, self.tenant) as session:
            return await CustomerService(session, await self._principal()).get_customer(customer_id)

    async def backdate(self, model, row_id, **values) -> None:
        """Move a record into the past, where no form may put it."""
        async with tenant_session(self.db, self.tenant) as session:
            await session.execute(update(model).where(model.id == row_id).values(**values))


@pytest.fixture
async def officer(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    return email


@pytest.fixture
def crm(db, tenant_a, officer) -> Relationship:
    return Relationship(db, tenant_a.tenant, officer)


async def english(client) -> None:
    await client.get("/lang/en?next=/")


def cursor_of(html: str) -> str:
    found = re.search(r'id="timeline-older".*?href="([^"]+)"', html, re.S)
    assert found, "no Older link"
    return found.group(1).replace("&amp;", "&")


# --- logging a contact ---


async def test_log_contact_from_the_header_writes_the_contact_and_its_follow_up(client, tenant_a, crm):
    customer = await crm.customer()
    url = f"/t/{tenant_a.slug}/customers/{customer}"
    detail = await client.get(url)
    assert detail.status_code == 200
    assert '<details class="card log-contact" id="log-contact"' in detail.text and shows(
        detail, "Log contact"
    )
    assert f'action="{url}/interactions"' in detail.text

    logged = await post(
        client,
        f"{url}/interactions",
        {
            "at": "",
            "channel": "wechat",
            "summary": "客户询问提前还款",
            "next_step": "发送还款测算",
            "follow_up_on": date.today().isoformat(),
        },
    )
    assert logged.status_code == 303
    (interaction,) = await crm.interactions(customer)
    assert logged.headers["location"] == f"{url}?tab=timeline#entry-{interaction.id}"
    assert interaction.channel == "wechat" and interaction.next_step == "发送还款测算"
    assert (await crm.customer_row(customer)).last_contact_at == interaction.at
    (follow_up,) = await crm.follow_ups(customer)
    assert follow_up.due_on == date.today() and follow_up.interaction_id == interaction.id

    timeline = await client.get(f"{url}?tab=timeline")
    assert "客户询问提前还款" in timeline.text and shows(timeline, "WeChat")
    assert re.findall(r'class="event event-([\w_]+)"', timeline.text) == ["interaction"]
    assert f'id="follow-up-{follow_up.id}"' in rows_of(timeline.text, "open-follow-ups")[0]


async def test_a_contact_time_from_the_form_is_read_in_the_servers_zone(client, tenant_a, crm):
    customer = await crm.customer()
    typed = (datetime.now() - timedelta(hours=3)).replace(second=0, microsecond=0)
    logged = await post(
        client,
        f"/t/{tenant_a.slug}/customers/{customer}/interactions",
        {"at": typed.strftime("%Y-%m-%dT%H:%M"), "channel": "visit", "summary": "上门核实经营"},
    )
    assert logged.status_code == 303
    (interaction,) = await crm.interactions(customer)
    assert interaction.at == typed.astimezone()


async def test_a_refused_contact_is_shown_inline_in_both_languages_and_writes_nothing(client, tenant_a, crm):
    customer = await crm.customer()
    url = f"/t/{tenant_a.slug}/customers/{customer}/interactions"
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    refused = await post(client, url, {"channel": "fax", "summary": "  ", "follow_up_on": yesterday})
    assert refused.status_code == 422
    assert '<details class="card log-contact" id="log-contact" open' in refused.text
    assert shows(refused, "Choose one of the listed values.")
    assert shows(refused, "The follow-up date must be from today and within ten years.")
    assert 'id="summary-error"' in refused.text and 'id="follow_up_on-error"' in refused.text
    future = await post(client, url, {"channel": "phone", "summary": "x", "at": "2999-01-01T09:00"})
    assert future.status_code == 422
    assert shows(future, "Enter when it happened (not in the future), with a time zone.")
    await english(client)
    english_page = await post(client, url, {"channel": "phone", "summary": ""})
    assert english_page.status_code == 422 and 'id="summary-error"' in english_page.text
    assert "Please correct the marked fields. Nothing was saved." in english_page.text
    assert await crm.interactions(customer) == [] and await crm.follow_ups(customer) == []
    assert (await crm.customer_row(customer)).last_contact_at is None


# --- follow-ups and my day ---


async def test_my_day_sorts_its_follow_ups_by_due_date_or_customer(client, tenant_a, crm):
    today, soon, later = (date.today() + timedelta(days=n) for n in (0, 1, 3))
    names = {}
    for name, due_on, channel in (
        ("Charlie", today, "phone"),
        ("Alpha", today, "phone"),
        ("Bravo", today, "phone"),
        ("Alpha", later, "visit"),
        ("Bravo", soon, "visit"),
    ):
        customer = names.get(name) or await crm.customer(name=name)
        names[name] = customer
        await crm.plan(customer, due_on=due_on.isoformat(), channel=channel)
    base = f"/t/{tenant_a.slug}/my-day"

    def order(html: str, table: str) -> list[str]:
        return [re.search(r"tab=timeline\">([^<]+)</a>", row).group(1) for row in rows_of(html, table)]

    by_due = await client.get(base)  # the soonest first; planned first among the same day
    assert order(by_due.text, "due-today") == ["Charlie", "Alpha", "Bravo"]
    assert order(by_due.text, "visits-this-week") == ["Bravo", "Alpha"]
    assert (
        'aria-sort="ascending"' in by_due.text
        and f'href="{base}?sort=due_on&amp;direction=desc"' in by_due.text
    )
    by_name = await client.get(f"{base}?sort=customer&direction=asc")
    assert order(by_name.text, "due-today") == ["Alpha", "Bravo", "Charlie"]
    assert order(by_name.text, "visits-this-week") == ["Alpha", "Bravo"]
    assert f'href="{base}?sort=customer&amp;direction=desc"' in by_name.text
    backwards = await client.get(f"{base}?sort=customer&direction=desc")
    assert order(backwards.text, "due-today") == ["Charlie", "Bravo", "Alpha"]
    unknown = await client.get(f"{base}?sort=note&direction=sideways")  # the default order
    assert order(unknown.text, "due-today") == ["Charlie", "Alpha", "Bravo"]


async def test_plan_a_visit_and_see_it_on_the_customer_and_in_my_day(client, db, tenant_a, crm):
    customer = await crm.customer()
    url = f"/t/{tenant_a.slug}/customers/{customer}"
    in_three_days = (date.today() + timedelta(days=3)).isoformat()
    planned = await post(
        client, f"{url}/follow-ups", {"due_on": in_three_days, "channel": "visit", "note": "看厂房"}
    )
    assert planned.status_code == 303
    (follow_up,) = await crm.follow_ups(customer)
    assert planned.headers["location"] == f"{url}?tab=timeline#follow-up-{follow_up.id}"
    assert (follow_up.channel, follow_up.note, follow_up.due_on.isoformat()) == (
        "visit",
        "看厂房",
        in_three_days,
    )
    tab = await client.get(f"{url}?tab=timeline")
    assert "看厂房" in rows_of(tab.text, "open-follow-ups")[0]

    day = await client.get(f"/t/{tenant_a.slug}/my-day")
    assert day.status_code == 200 and shows(day, "Visits this week")
    visit = next(r for r in rows_of(day.text, "visits-this-week") if f"follow-up-{follow_up.id}" in r)
    assert f'href="{url}?tab=timeline"' in visit

    colleague = await add_user(db, tenant_a.tenant, "loan_officer")
    colleague_id = (await principal_of(db, tenant_a.tenant, colleague)).user_id
    handed = await post(
        client, f"{url}/follow-ups", {"due_on": in_three_days, "assignee_id": str(colleague_id)}
    )
    assert handed.status_code == 303
    assert {f.assignee_id for f in await crm.follow_ups(customer)} == {follow_up.assignee_id, colleague_id}


async def test_a_refused_plan_writes_nothing(client, tenant_a, crm):
    customer = await crm.customer()
    url = f"/t/{tenant_a.slug}/customers/{customer}/follow-ups"
    refused = await post(client, url, {"due_on": "tomorrow", "channel": "visit", "assignee_id": "nobody"})
    assert refused.status_code == 422
    assert '<details class="plan-follow-up" id="plan-follow-up" open' in refused.text
    assert shows(refused, "Enter a date as YYYY-MM-DD.") and 'id="assignee_id-error"' in refused.text
    await english(client)
    past = await post(client, url, {"due_on": (date.today() - timedelta(days=3)).isoformat()})
    assert past.status_code == 422
    assert shows(past, "The follow-up date must be from today and within ten years.", zh=False)
    assert await crm.follow_ups(customer) == []


async def test_my_day_highlights_overdue_and_lists_customers_waiting_for_contact(client, tenant_a, crm):
    late_customer = await crm.customer()
    late = await crm.plan(late_customer, note="催收提醒")
    await crm.backdate(FollowUp, late, due_on=date.today() - timedelta(days=4))
    today_customer = await crm.customer()
    due = await crm.plan(today_customer, note="今日回电")
    waiting = await crm.customer()
    await crm.backdate(Customer, waiting, created_at=datetime.now(UTC) - timedelta(days=400))

    day = await client.get(f"/t/{tenant_a.slug}/my-day")
    assert day.status_code == 200
    overdue = next(r for r in rows_of(day.text, "overdue-follow-ups") if f"follow-up-{late}" in r)
    assert 'class="overdue"' in overdue and ZH("Days overdue: %(days)s") % {"days": 4} in overdue
    assert any(f"follow-up-{due}" in r for r in rows_of(day.text, "due-today"))
    assert not any(f"follow-up-{due}" in r for r in rows_of(day.text, "overdue-follow-ups"))
    row = next(r for r in rows_of(day.text, "uncontacted") if f"uncontacted-{waiting}" in r)
    assert f'href="/t/{tenant_a.slug}/customers/{waiting}"' in row and ">400<" in row

    await english(client)
    english_day = await client.get(f"/t/{tenant_a.slug}/my-day")
    assert "Overdue follow-ups" in english_day.text and "Days overdue: 4" in english_day.text


async def test_tick_off_with_htmx_swaps_the_row_and_without_redirects(client, tenant_a, crm):
    customer = await crm.customer()
    first, second = await crm.plan(customer), await crm.plan(customer)

    plain = await post(client, f"/t/{tenant_a.slug}/follow-ups/{first}/done")
    assert plain.status_code == 303 and plain.headers["location"] == f"/t/{tenant_a.slug}/my-day"
    swapped = await post(client, f"/t/{tenant_a.slug}/follow-ups/{second}/done", headers=HTMX)
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert swapped.text.lstrip().startswith(f'<tr id="follow-up-{second}" class="done">')
    assert shows(swapped, "Done") and "/done" not in swapped.text
    assert await crm.follow_ups(customer, open_only=True) == []

    third = await crm.plan(customer)
    back = await post(client, f"/t/{tenant_a.slug}/follow-ups/{third}/done", {"next": "customer"})
    assert back.headers["location"] == f"/t/{tenant_a.slug}/customers/{customer}?tab=timeline"
    assert all(f.done_at is not None for f in await crm.follow_ups(customer))


# --- the timeline ---


async def test_the_timeline_merges_every_source_and_pages_with_a_cursor_free_of_data(client, tenant_a, crm):
    customer = await crm.customer()
    loan = await crm.loan(customer)
    await crm.repay(loan, "500")
    await crm.complaint(customer, content="第一条投诉")
    for number in range(22):
        await crm.log(customer, f"第{number:02d}次通话")
    url = f"/t/{tenant_a.slug}/customers/{customer}"

    first = await client.get(f"{url}?tab=timeline")
    kinds = re.findall(r'class="event event-([\w_]+)"', first.text)
    assert kinds == ["interaction"] * 20 and "第21次通话" in first.text and "第01次通话" not in first.text
    older = cursor_of(first.text)
    before = parse_qs(urlsplit(older).query)["before"][0]
    at, _, ref = before.partition("|")
    assert datetime.fromisoformat(at) and uuid.UUID(ref)  # a time and an entry id, nothing else
    assert "通话" not in unquote(older)

    more = await client.get(older, headers={**HTMX, "HX-Target": "timeline-older"})
    assert more.status_code == 200 and "<html" not in more.text
    assert re.findall(r'class="event event-([\w_]+)"', more.text) == [
        "interaction",
        "interaction",
        "complaint",
        "repayment",
        "customer_changed",  # the first loan makes the prospect an active customer
        "loan_created",
    ]
    assert "第00次通话" in more.text and "第一条投诉" in more.text and 'id="timeline-older"' not in more.text

    no_js = await client.get(older)
    assert no_js.status_code == 200 and "<html" in no_js.text and "第00次通话" in no_js.text
    broken = await client.get(f"{url}?tab=timeline&before=garbage")
    assert broken.status_code == 200 and "第21次通话" in broken.text

    await english(client)
    english_page = await client.get(older)
    assert "Loan created" in english_page.text and "Complaint" in english_page.text


async def test_a_profile_change_on_the_timeline_names_its_fields_as_the_form_labels_them(
    client, db, tenant_a, crm
):
    customer = await crm.customer()
    async with tenant_session(db, tenant_a.tenant) as session:
        principal = await crm._principal()
        await CustomerService(session, principal).update_customer(
            customer, {"monthly_income": "18000", "risk_level": "high"}
        )
        # A field this release does not know (a later one's, or a retired one's) keeps its name.
        await audit.record(
            session,
            actor=principal,
            action=audit.UPDATE,
            entity_type="customer",
            entity_id=str(customer),
            changes={"future_field": {"from": 1, "to": 2}},
        )
    url = f"/t/{tenant_a.slug}/customers/{customer}"

    def changes(html: str) -> list[str]:
        return [
            re.sub(r"\s+", " ", entry).strip()
            for entry in re.findall(
                r'class="event event-customer_changed"[^>]*>.*?</time>(.*?)</li>', html, re.S
            )
        ]

    chinese = await client.get(f"{url}?tab=timeline")
    label = f"{ZH('Monthly income (yuan)')}{ZH(', ')}{ZH('Risk level')}"
    assert f"{ZH('Profile changed')}: {label}" in changes(chinese.text)
    assert f"{ZH('Profile changed')}: future_field" in changes(chinese.text)
    assert "monthly_income" not in "".join(changes(chinese.text))
    form = await client.get(f"{url}/edit")  # the same words on the form the change was made with
    assert f'<label for="monthly_income">{ZH("Monthly income (yuan)")}</label>' in form.text
    await english(client)
    english_page = await client.get(f"{url}?tab=timeline")
    assert "Profile changed: Monthly income (yuan), Risk level" in changes(english_page.text)


# --- complaints ---


async def test_record_a_complaint_from_the_customer_page(client, tenant_a, crm):
    customer = await crm.customer()
    loan = await crm.loan(customer)
    url = f"/t/{tenant_a.slug}/customers/{customer}"
    tab = await client.get(f"{url}?tab=complaints")
    assert tab.status_code == 200 and shows(tab, "Record a complaint") and f'value="{loan}"' in tab.text
    recorded = await post(
        client,
        f"{url}/complaints",
        {"kind": "complaint", "category": "interest_rate", "content": "利率与合同不符", "loan_id": str(loan)},
    )
    assert recorded.status_code == 303
    (complaint,) = await crm.complaints(customer)
    assert recorded.headers["location"] == f"/t/{tenant_a.slug}/complaints/{complaint.id}"
    assert (complaint.category, complaint.loan_id, complaint.status) == ("interest_rate", loan, "open")
    shown = await client.get(recorded.headers["location"])
    assert shown.status_code == 200 and "利率与合同不符" in shown.text and shows(shown, "Interest rate")
    assert f'href="/t/{tenant_a.slug}/loans/{loan}"' in shown.text
    listed = await client.get(f"{url}?tab=complaints")
    assert f'id="complaint-{complaint.id}"' in listed.text


async def test_a_refused_complaint_writes_nothing(client, tenant_a, crm):
    customer = await crm.customer()
    someone_elses_loan = await crm.loan(await crm.customer())
    url = f"/t/{tenant_a.slug}/customers/{customer}/complaints"
    refused = await post(
        client, url, {"category": "weather", "content": " ", "loan_id": str(someone_elses_loan)}
    )
    assert refused.status_code == 422
    assert shows(refused, "Choose one of the listed values.")
    for field in ("category", "content", "loan_id"):
        assert f'id="{field}-error"' in refused.text, field
    await english(client)
    english_page = await post(client, url, {"category": "", "content": "x"})
    assert english_page.status_code == 422 and "Choose one of the listed values." in english_page.text
    assert await crm.complaints(customer) == []


async def test_complaints_list_filters_by_status_and_highlights_late_ones(client, tenant_a, crm):
    customer = await crm.customer()
    late = await crm.complaint(customer)
    await crm.backdate(Complaint, late, respond_by=datetime.now(UTC) - timedelta(hours=2))
    fresh = await crm.complaint(customer, category="service")
    resolved = await crm.complaint(customer)
    resolving = await post(
        client, f"/t/{tenant_a.slug}/complaints/{resolved}", {"status": "resolved", "resolution": "已退费"}
    )
    assert resolving.status_code == 303

    everything = await client.get(f"/t/{tenant_a.slug}/complaints")
    rows = {
        re.search(r'id="complaint-([\w-]+)"', r).group(1): r for r in rows_of(everything.text, "complaints")
    }
    assert 'class="overdue"' in rows[str(late)] and 'class="overdue"' not in rows[str(fresh)]
    assert {str(late), str(fresh), str(resolved)} <= set(rows)
    open_only = await client.get(f"/t/{tenant_a.slug}/complaints?status=open")
    listed = "".join(rows_of(open_only.text, "complaints"))
    assert str(late) in listed and str(fresh) in listed and str(resolved) not in listed
    done = await client.get(f"/t/{tenant_a.slug}/complaints?status=resolved")
    assert str(resolved) in done.text and str(late) not in done.text
    await english(client)
    english_page = await client.get(f"/t/{tenant_a.slug}/complaints?status=bogus")
    assert (
        english_page.status_code == 200
        and "Overdue" in english_page.text
        and str(resolved) in english_page.text
    )


async def test_resolving_needs_a_resolution_and_the_assignee_can_change(client, db, tenant_a, crm):
    customer = await crm.customer()
    complaint = await crm.complaint(customer)
    url = f"/t/{tenant_a.slug}/complaints/{complaint}"
    refused = await post(client, url, {"status": "resolved", "resolution": "  "})
    assert refused.status_code == 422 and shows(refused, "Describe how it was resolved.")
    assert 'id="resolution-error"' in refused.text
    (stored,) = await crm.complaints(customer)
    assert stored.status == "open" and stored.resolved_at is None

    colleague = await add_user(db, tenant_a.tenant, "manager")
    colleague_id = (await principal_of(db, tenant_a.tenant, colleague)).user_id
    moved = await post(
        client, url, {"status": "in_progress", "assignee_id": str(colleague_id), "resolution": ""}
    )
    assert moved.status_code == 303
    (stored,) = await crm.complaints(customer)
    assert (stored.status, stored.assignee_id) == ("in_progress", colleague_id)
    resolved = await post(
        client, url, {"status": "resolved", "assignee_id": "", "resolution": "已退还多收利息"}
    )
    assert resolved.status_code == 303
    (stored,) = await crm.complaints(customer)
    assert stored.status == "resolved" and stored.resolution == "已退还多收利息" and stored.resolved_at
    await english(client)
    page = await client.get(url)
    assert "Resolved" in page.text and "已退还多收利息" in page.text


# --- warnings and risk cases on the customer page ---


async def test_live_flags_and_risk_cases_show_on_the_customer_page(client, db, tenant_a, crm):
    customer = await crm.customer()
    await crm.loan(customer, start_date=overdue_start().isoformat())
    risk_email = await add_user(db, tenant_a.tenant, "risk_officer")
    risk = await principal_of(db, tenant_a.tenant, risk_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        await WarningService(session, risk).evaluate()
        (warning,) = [
            w
            for w in (await WarningService(session, risk).for_customers([customer]))[customer]
            if w.kind == "days_past_due"
        ]
        case = await RiskCaseService(session, risk).open_case(
            customer, {"trigger": "overdue", "description": "逾期三期", "owner_id": str(risk.user_id)}
        )
    days = warning.details["days_past_due"]
    url = f"/t/{tenant_a.slug}/customers/{customer}"
    page = await client.get(url)
    assert ZH("%(days)s days past due") % {"days": days} in page.text
    assert f'href="/t/{tenant_a.slug}/risk/cases/{case.id}"' in page.text
    assert "/risk/cases/new" not in page.text  # the officer may not manage risk
    timeline = await client.get(f"{url}?tab=timeline")
    opened = re.search(r'<li class="event event-risk_case_opened".*?</li>', timeline.text, re.S)
    assert opened and "逾期三期" in opened.group(0) and shows(timeline, "Overdue loan")
    await english(client)
    english_page = await client.get(url)
    assert f"{days} days past due" in english_page.text

    client.cookies.clear()
    assert (await web_sign_in(client, tenant_a.slug, risk_email)).status_code == 303
    risk_page = await client.get(url)
    assert f'href="/t/{tenant_a.slug}/risk/cases/new?customer={customer}"' in risk_page.text


# --- permissions and record scope ---


async def test_without_customers_write_every_post_is_refused(client, db, tenant_a, crm):
    customer = await crm.customer()
    follow_up = await crm.plan(customer)
    complaint = await crm.complaint(customer)
    viewer = await add_user(db, tenant_a.tenant, "viewer")
    client.cookies.clear()
    assert (await web_sign_in(client, tenant_a.slug, viewer)).status_code == 303
    page = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=timeline")
    assert page.status_code == 200 and 'id="log-contact"' not in page.text and "/done" not in page.text
    base = f"/t/{tenant_a.slug}"
    for path, data in (
        (f"{base}/customers/{customer}/interactions", {"channel": "phone", "summary": "越权"}),
        (f"{base}/customers/{customer}/follow-ups", {"due_on": date.today().isoformat()}),
        (f"{base}/customers/{customer}/complaints", {"category": "fees", "content": "越权"}),
        (f"{base}/complaints/{complaint}", {"status": "in_progress"}),
        (f"{base}/follow-ups/{follow_up}/done", {}),
    ):
        assert (await post(client, path, data)).status_code == 403, path
    assert await crm.interactions(customer) == []
    assert [f.id for f in await crm.follow_ups(customer, open_only=True)] == [follow_up]
    assert [(c.id, c.status) for c in await crm.complaints(customer)] == [(complaint, "open")]


async def test_another_officers_records_are_not_found(client, db, tenant_a, crm):
    other = Relationship(db, tenant_a.tenant, await add_user(db, tenant_a.tenant, "loan_officer"))
    customer = await other.customer()
    follow_up = await other.plan(customer)
    complaint = await other.complaint(customer)
    base = f"/t/{tenant_a.slug}"
    assert (await client.get(f"{base}/complaints/{complaint}")).status_code == 404
    assert (await client.get(f"{base}/complaints/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"{base}/complaints/nonsense")).status_code == 404
    for path, data in (
        (f"{base}/customers/{customer}/interactions", {"channel": "phone", "summary": "越界"}),
        (f"{base}/customers/{customer}/follow-ups", {"due_on": date.today().isoformat()}),
        (f"{base}/customers/{customer}/complaints", {"category": "fees", "content": "越界"}),
        (f"{base}/complaints/{complaint}", {"status": "resolved", "resolution": "越界"}),
        (f"{base}/follow-ups/{follow_up}/done", {}),
        (f"{base}/follow-ups/{uuid.uuid4()}/done", {}),
    ):
        assert (await post(client, path, data)).status_code == 404, path
    listed = await client.get(f"{base}/complaints")
    assert str(complaint) not in listed.text
    assert await other.interactions(customer) == []
    assert len(await other.follow_ups(customer, open_only=True)) == 1
    assert [c.status for c in await other.complaints(customer)] == ["open"]


async def test_pages_render_in_both_languages(client, tenant_a, crm):
    customer = await crm.customer()
    complaint = await crm.complaint(customer)
    paths = (
        f"/t/{tenant_a.slug}/my-day",
        f"/t/{tenant_a.slug}/complaints",
        f"/t/{tenant_a.slug}/complaints/{complaint}",
        f"/t/{tenant_a.slug}/customers/{customer}?tab=timeline",
        f"/t/{tenant_a.slug}/customers/{customer}?tab=complaints",
    )
    for path in paths:
        zh = await client.get(path)
        assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text, path
        assert zh.headers["cache-control"] == "no-store"
    assert shows(await client.get(paths[0]), "Waiting for contact")
    await english(client)
    for path in paths:
        en = await client.get(path)
        assert en.status_code == 200 and '<html lang="en">' in en.text, path
    assert "Waiting for contact" in (await client.get(paths[0])).text
