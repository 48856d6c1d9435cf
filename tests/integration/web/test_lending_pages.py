"""Lending pages: collateral, loans, repayments, reversals and classes through the forms.

Every refused form answers 422 with its message beside the field, in zh-CN and in English, and
writes nothing; permissions and record scope come from the services (403, 404).
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from markupsafe import escape

from tenantcrm.collateral.service import CollateralService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanFilter, LoanService
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, principal_of, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
HTMX = {"HX-Request": "true"}


def shows(page, message: str, zh: bool = True) -> bool:
    """Whether the page shows the message (in Chinese unless `zh` is false), as HTML escapes it."""
    return str(escape(ZH(message) if zh else message)) in page.text


def csrf(client) -> dict[str, str]:
    return {"_csrf_token": client.cookies["csrftoken"]}


async def post(client, path: str, data: dict | None = None, **kwargs):
    return await client.post(path, data={**csrf(client), **(data or {})}, follow_redirects=False, **kwargs)


def resident_id(born: str = "19850612", female: bool = False) -> str:
    """A valid resident ID (GB 11643 check digit) with a random sequence, so tests never collide."""
    sequence = secrets.randbelow(50) * 2 + (0 if female else 1)
    body = f"110105{born}{secrets.randbelow(10)}{sequence:02d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(digit) * weight for digit, weight in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


class Book:
    """Reads and seeds the tenant's lending book through the services, as a given user."""

    def __init__(self, db, tenant, email: str) -> None:
        self.db, self.tenant, self.email = db, tenant, email

    async def _principal(self, *extra: str):
        principal = await principal_of(self.db, self.tenant, self.email)
        return replace(principal, permissions=principal.permissions | set(extra)) if extra else principal

    async def customer(self, **values) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            row = await CustomerService(session, await self._principal()).create_customer(
                {"name": f"借款人 {uuid.uuid4().hex[:6]}", **values}
            )
            return row.id

    async def collateral(self, customer_id, value: str = "2000000") -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            row = await CollateralService(session, await self._principal()).create(
                customer_id, {"kind": "residence", "description": "两居室", "appraised_value": value}
            )
            return row.id

    async def loan(self, customer_id, **terms) -> uuid.UUID:
        data = {
            "product": "房抵经营贷",
            "amount": "120000",
            "annual_rate": "6%",
            "term_months": "12",
            "method": "equal_installment",
            "start_date": date.today().isoformat(),
            **terms,
        }
        async with tenant_session(self.db, self.tenant) as session:
            return (await LoanService(session, await self._principal()).create_loan(customer_id, data)).id

    async def repay(self, loan_id, amount: str) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            service = LoanService(session, await self._principal())
            return (await service.record_repayment(loan_id, {"amount": amount})).id

    async def counts(self, customer_id=None, loan_id=None) -> dict[str, int]:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await self._principal()
            loans = LoanService(session, principal)
            found: dict[str, int] = {}
            if customer_id:
                found["collateral"] = len(
                    await CollateralService(session, principal).list_for_customer(customer_id)
                )
                found["loans"] = len(
                    (await loans.list_loans(LoanFilter(customer_id=customer_id), first=100)).rows
                )
            if loan_id:
                found["repayments"] = len(await loans.repayments(loan_id))
                found["reversed"] = sum(1 for r in await loans.repayments(loan_id) if r.reversed_at)
                found["decisions"] = len(await loans.classification_history(loan_id))
                found["flags"] = len((await loans.get_loan(loan_id)).flags)
            return found

    async def arrears(self, loan_id):
        async with tenant_session(self.db, self.tenant) as session:
            service = LoanService(session, await self._principal())
            return await service.arrears(await service.get_loan(loan_id))

    async def rules(self):
        async with tenant_session(self.db, self.tenant) as session:
            return await LoanService(session, await self._principal()).rules()


@pytest.fixture
async def officer(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    return email


@pytest.fixture
def book(db, tenant_a, officer) -> Book:
    return Book(db, tenant_a.tenant, officer)


def overdue_start() -> date:
    """A start four months back: three instalments are overdue today."""
    return add_months(date.today(), -4)


def rows_of(html: str, table_id: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    return re.findall(r"<tr[^>]*>.*?</tr>", table.group(0).split("<tbody>")[1], re.S)


def fact(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no element {element_id}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


# --- the customer form and tabs ---


async def test_customer_form_takes_the_profile_and_derives_gender_from_the_id(client, tenant_a, officer):
    number = resident_id("19850612", female=True)
    created = await post(
        client,
        f"/t/{tenant_a.slug}/customers/new",
        {
            "kind": "individual",
            "name": f"档案 {uuid.uuid4().hex[:6]}",
            "national_id": number,
            "marital_status": "married",
            "occupation": "个体户",
            "industry": "餐饮",
            "source": "referral",
            "tags": "老客户，房抵",
            "monthly_income": "20000",
            "assets": "3000000",
            "liabilities": "60000",
            "credit_score": "720",
            "credit_grade": "aa",
            "risk_level": "low",
            "status": "prospect",
        },
    )
    assert created.status_code == 303
    profile = await client.get(created.headers["location"])
    assert "1985-06-12" in profile.text and shows(profile, "Female") and "老客户" in profile.text
    financials = await client.get(created.headers["location"] + "?tab=financials")
    assert fact(financials.text, "debt-to-income") == "25.00%"  # 60,000 over 12 × 20,000
    assert "AA" in financials.text and "720" in financials.text
    edit = await client.get(created.headers["location"] + "/edit")
    assert 'value="老客户, 房抵"' in edit.text and 'value="1985-06-12"' in edit.text

    contradicting = await post(
        client,
        f"/t/{tenant_a.slug}/customers/new",
        {"kind": "individual", "name": "矛盾", "national_id": resident_id(), "gender": "female"},
    )
    assert contradicting.status_code == 422
    assert shows(contradicting, "Does not match the resident ID number.")
    assert ZH("Does not match the resident ID number.") != "Does not match the resident ID number."


async def test_individual_only_fields_are_ignored_for_an_enterprise(client, tenant_a, officer):
    created = await post(
        client,
        f"/t/{tenant_a.slug}/customers/new",
        {
            "kind": "enterprise",
            "name": f"企业 {uuid.uuid4().hex[:6]}",
            "gender": "male",
            "birth_date": "1990-01-01",
        },
    )
    assert created.status_code == 303
    profile = await client.get(created.headers["location"])
    assert "1990-01-01" not in profile.text


async def test_tabs_are_links_and_htmx_gets_only_the_tabs(client, tenant_a, book):
    customer = await book.customer()
    url = f"/t/{tenant_a.slug}/customers/{customer}"
    for tab in ("profile", "financials", "collateral", "loans", "timeline"):
        full = await client.get(f"{url}?tab={tab}")
        assert full.status_code == 200 and "<html" in full.text
        assert re.search(rf'href="{re.escape(url)}\?tab={tab}"[^>]*aria-current="page"', full.text), tab
    partial = await client.get(f"{url}?tab=loans", headers={**HTMX, "HX-Target": "customer-tabs"})
    assert "<html" not in partial.text and partial.text.lstrip().startswith('<div id="customer-tabs">')
    assert partial.headers["hx-push-url"] == f"{url}?tab=loans"
    unknown = await client.get(f"{url}?tab=secrets")
    assert unknown.status_code == 200 and re.search(r'\?tab=profile"[^>]*aria-current', unknown.text)


# --- collateral ---


async def test_collateral_and_appraisals_through_the_forms(client, tenant_a, book):
    customer = await book.customer()
    created = await post(
        client,
        f"/t/{tenant_a.slug}/customers/{customer}/collateral",
        {
            "kind": "residence",
            "description": "三居室",
            "location": "南山区科技园",
            "region_code": "440300",
            "area_m2": "120.5",
            "appraised_value": "3,200,000",
            "appraised_on": "2024-05-01",
            "appraiser": "深圳评估所",
            "title_status": "clear",
            "lien_order": "1",
        },
    )
    assert created.status_code == 303
    assert created.headers["location"].startswith(f"/t/{tenant_a.slug}/customers/{customer}?tab=collateral")
    tab = await client.get(created.headers["location"])
    assert "三居室" in tab.text and "3,200,000.00" in tab.text and "2024-05-01" in tab.text
    collateral_id = re.search(r'id="collateral-([0-9a-f-]{36})"', tab.text).group(1)

    appraised = await post(
        client,
        f"/t/{tenant_a.slug}/collateral/{collateral_id}/appraisals",
        {"appraised_value": "3500000", "appraised_on": date.today().isoformat(), "appraiser": "复评"},
    )
    assert appraised.status_code == 303
    tab = await client.get(appraised.headers["location"])
    history = re.search(rf'id="appraisals-{collateral_id}".*?</table>', tab.text, re.S).group(0)
    assert history.count("<tr>") == 3  # header and two appraisals
    assert history.index("3,500,000.00") < history.index("3,200,000.00")  # newest first
    financials = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=financials")
    assert "3,500,000.00" in financials.text


async def test_refused_collateral_is_shown_in_both_languages_and_writes_nothing(client, tenant_a, book):
    customer = await book.customer()
    path = f"/t/{tenant_a.slug}/customers/{customer}/collateral"
    bad = {"kind": "castle", "appraised_value": "很多", "lien_order": "12", "description": "保留我"}
    refused = await post(client, path, bad)
    assert refused.status_code == 422
    message = "Enter an amount in yuan, 0 or more, with at most two decimals."
    assert ZH(message) != message and shows(refused, message)
    assert shows(refused, "Enter a lien order from 1 to 9.")
    assert 'id="appraised_value-error"' in refused.text and 'value="保留我"' in refused.text
    await client.get("/lang/en?next=/")
    english = await post(client, path, bad)
    assert english.status_code == 422 and message in english.text
    assert (await book.counts(customer_id=customer))["collateral"] == 0

    collateral_id = await book.collateral(customer)
    future = (date.today() + timedelta(days=3)).isoformat()
    late = await post(
        client,
        f"/t/{tenant_a.slug}/collateral/{collateral_id}/appraisals",
        {"appraised_value": "1", "appraised_on": future},
    )
    assert late.status_code == 422 and "Enter a real date (YYYY-MM-DD), not in the future." in late.text
    tab = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=collateral")
    history = re.search(rf'id="appraisals-{collateral_id}".*?</table>', tab.text, re.S).group(0)
    assert history.count("<tr>") == 2  # the first appraisal only


# --- loans ---


async def test_a_loan_from_the_form_shows_its_schedule_and_ltv(client, tenant_a, book):
    customer = await book.customer()
    collateral = await book.collateral(customer, "400000")
    created = await post(
        client,
        f"/t/{tenant_a.slug}/customers/{customer}/loans",
        {
            "product": "房抵经营贷",
            "amount": "12万",
            "annual_rate": "4.9",
            "term_months": "12",
            "method": "equal_principal",
            "start_date": date.today().isoformat(),
            "first_due_date": "",
            "collateral_ids": str(collateral),
        },
    )
    assert created.status_code == 303
    loan_url = created.headers["location"]
    assert re.fullmatch(rf"/t/{tenant_a.slug}/loans/[0-9a-f-]{{36}}", loan_url)
    detail = await client.get(loan_url)
    assert detail.status_code == 200 and "<title>" in detail.text and "房抵经营贷" in detail.text
    assert len(rows_of(detail.text, "schedule-table")) == 12
    assert "10,000.00" in detail.text  # equal principal: 120,000 / 12
    assert fact(detail.text, "ltv") == "30.00%"  # 120,000 over 400,000
    assert fact(detail.text, "dpd") == "0"
    loans_tab = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=loans")
    assert loan_url in loans_tab.text and "120,000.00" in loans_tab.text
    collateral_tab = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=collateral")
    assert loan_url in collateral_tab.text and "30.00%" in collateral_tab.text
    timeline = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=timeline")
    assert shows(timeline, "Loan created")


async def test_refused_loans_write_nothing(client, db, tenant_a, book):
    customer = await book.customer()
    path = f"/t/{tenant_a.slug}/customers/{customer}/loans"
    bad = {
        "product": "",
        "amount": "abc",
        "annual_rate": "150",
        "term_months": "999",
        "method": "equal_installment",
    }
    refused = await post(client, path, bad)
    assert refused.status_code == 422
    for message in (
        "This field is required.",
        "Enter an amount in yuan, e.g. 3000000 or 300万.",
        "The annual rate must be from 0 up to 100 percent, with at most four decimals.",
        "The term must be 1 to 480 months.",
    ):
        assert shows(refused, message), message
    assert 'id="annual_rate-error"' in refused.text and 'value="150"' in refused.text
    await client.get("/lang/en?next=/")
    english = await post(client, path, bad)
    assert "The term must be 1 to 480 months." in english.text

    # Collateral of another customer cannot secure the loan.
    stranger = await book.customer()
    theirs = await book.collateral(stranger)
    foreign = await post(
        client,
        path,
        {
            "product": "x",
            "amount": "1000",
            "annual_rate": "5",
            "term_months": "6",
            "method": "bullet",
            "start_date": date.today().isoformat(),
            "collateral_ids": str(theirs),
        },
    )
    assert foreign.status_code == 422
    assert shows(foreign, "Only this customer's collateral can secure the loan.", zh=False)
    # An amount in 万 beyond what a schedule can hold is refused, not an error page.
    huge = await post(
        client,
        path,
        {
            "product": "x",
            "amount": "99999999999万",
            "annual_rate": "5",
            "term_months": "6",
            "method": "bullet",
            "start_date": date.today().isoformat(),
        },
    )
    assert huge.status_code == 422 and 'id="amount-error"' in huge.text
    assert (await book.counts(customer_id=customer))["loans"] == 0


async def test_preview_schedule_with_and_without_javascript(client, tenant_a, book):
    customer = await book.customer()
    path = f"/t/{tenant_a.slug}/customers/{customer}/loans/preview"
    terms = {
        "product": "",
        "amount": "300万",
        "annual_rate": "4.9",
        "term_months": "120",
        "method": "equal_installment",
        "start_date": "2026-12-01",
    }
    partial = await post(client, path, terms, headers={**HTMX, "HX-Target": "loan-preview"})
    assert partial.status_code == 200 and partial.text.lstrip().startswith('<div id="loan-preview"')
    assert "31,673.22" in partial.text and len(rows_of(partial.text, "preview-schedule-table")) == 120
    full = await post(client, path, terms)
    assert full.status_code == 200 and "<html" in full.text and "31,673.22" in full.text
    assert 'value="300万"' in full.text  # the form keeps what was typed
    bad = await post(
        client, path, {**terms, "term_months": "0"}, headers={**HTMX, "HX-Target": "loan-preview"}
    )
    assert bad.status_code == 422 and shows(bad, "The term must be 1 to 480 months.")
    assert (await book.counts(customer_id=customer))["loans"] == 0


async def test_overdue_rows_are_highlighted_and_a_repayment_clears_the_arrears(client, tenant_a, book):
    customer = await book.customer()
    loan = await book.loan(customer, start_date=overdue_start().isoformat())
    url = f"/t/{tenant_a.slug}/loans/{loan}"
    detail = await client.get(url)
    states = [
        re.search(r'data-state="([\w-]+)"', row).group(1) for row in rows_of(detail.text, "schedule-table")
    ]
    assert states[:3] == ["overdue"] * 3 and "overdue" not in states[3:]
    assert states[3] == "due-soon"  # due today
    assert int(fact(detail.text, "dpd")) > 60
    arrears = await book.arrears(loan)

    paid = await post(
        client, f"{url}/repayments", {"amount": str(arrears.overdue_amount), "channel": "wechat"}
    )
    assert paid.status_code == 303 and paid.headers["location"] == f"{url}#repayments"
    detail = await client.get(url)
    assert fact(detail.text, "dpd") == "0" and fact(detail.text, "overdue-amount") == "¥0.00"
    states = [
        re.search(r'data-state="([\w-]+)"', row).group(1) for row in rows_of(detail.text, "schedule-table")
    ]
    assert states[:3] == ["paid"] * 3
    assert shows(detail, "WeChat Pay")
    # As of a day in the past, the same rows were overdue.
    back = await client.get(f"{url}?as_of={(date.today() - timedelta(days=1)).isoformat()}")
    assert int(fact(back.text, "dpd")) > 0


async def test_refused_repayments_write_nothing(client, tenant_a, book):
    customer = await book.customer()
    loan = await book.loan(customer, start_date=overdue_start().isoformat())
    url = f"/t/{tenant_a.slug}/loans/{loan}"
    future = (date.today() + timedelta(days=1)).isoformat()
    refused = await post(
        client, f"{url}/repayments", {"amount": "-5", "paid_on": future, "channel": "cheque"}
    )
    assert refused.status_code == 422
    assert shows(refused, "The date must be on or after the loan's start and not in the future.")
    assert shows(refused, "Choose one of the listed values.")
    assert 'id="amount-error"' in refused.text
    # More than settles the loan: the most it could be is named, in the user's language.
    too_much = await post(client, f"{url}/repayments", {"amount": "1000000"})
    assert too_much.status_code == 422
    assert re.search(r"12\d,\d{3}\.\d{2}", too_much.text.split('id="amount-error"')[1][:300])
    await client.get("/lang/en?next=/")
    english = await post(client, f"{url}/repayments", {"amount": "1000000"})
    assert "More than the loan needs: at most " in english.text
    assert (await book.counts(loan_id=loan))["repayments"] == 0


async def test_reversal_needs_a_reason_and_strikes_the_repayment_through(client, tenant_a, book):
    customer = await book.customer()
    loan = await book.loan(customer, start_date=overdue_start().isoformat())
    overdue = (await book.arrears(loan)).overdue_amount
    repayment = await book.repay(loan, str(overdue))
    url = f"/t/{tenant_a.slug}/loans/{loan}"
    reverse = f"{url}/repayments/{repayment}/reverse"

    refused = await post(client, reverse, {"reason": " "})
    assert refused.status_code == 422
    assert shows(refused, "Give a reason (3 to 1000 characters).")
    assert f'id="reason-{repayment}-error"' in refused.text
    assert (await book.counts(loan_id=loan))["reversed"] == 0

    reversed_ = await post(client, reverse, {"reason": "银行退票"})
    assert reversed_.status_code == 303
    detail = await client.get(url)
    row = next(r for r in rows_of(detail.text, "repayments-table") if f'id="repayment-{repayment}"' in r)
    assert 'class="reversed"' in row and "<s>" in row and "银行退票" in row
    assert int(fact(detail.text, "dpd")) > 0  # the arrears are back
    again = await post(client, reverse, {"reason": "再次冲正"})
    assert again.status_code == 422 and shows(again, "This repayment was already reversed.")
    timeline = await client.get(f"/t/{tenant_a.slug}/customers/{customer}?tab=timeline")
    events = re.findall(r'class="event event-([\w_]+)"', timeline.text)
    # The first loan makes the prospect an active customer: a change of its profile.
    assert events == ["repayment_reversed", "repayment", "customer_changed", "loan_created"]


async def test_classification_and_flags_need_loans_classify(client, db, tenant_a, book):
    customer = await book.customer()
    loan = await book.loan(customer, start_date=overdue_start().isoformat())
    url = f"/t/{tenant_a.slug}/loans/{loan}"
    officer_page = await client.get(url)
    assert 'id="classify-form"' not in officer_page.text
    assert shows(officer_page, "Special mention")  # the suggestion, from 1 day past due
    denied = await post(client, f"{url}/classify", {"classification": "substandard", "reason": "逾期九十天"})
    assert denied.status_code == 403
    assert (await post(client, f"{url}/flags", {"flags": "litigation"})).status_code == 403

    risk = await add_user(db, tenant_a.tenant, "risk_officer")
    await web_sign_in(client, tenant_a.slug, risk)
    refused = await post(client, f"{url}/classify", {"classification": "worst", "reason": ""})
    assert refused.status_code == 422
    assert shows(refused, "Give a reason (3 to 1000 characters).")
    assert shows(refused, "Choose one of the listed values.")
    assert (await book.counts(loan_id=loan))["decisions"] == 0

    decided = await post(
        client, f"{url}/classify", {"classification": "substandard", "reason": "多期逾期, 担保不足"}
    )
    assert decided.status_code == 303
    flagged = await post(client, f"{url}/flags", {"flags": ["litigation", "restructured"]})
    assert flagged.status_code == 303
    bad_flag = await post(client, f"{url}/flags", {"flags": ["haunted"]})
    assert bad_flag.status_code == 422 and (await book.counts(loan_id=loan))["flags"] == 2
    detail = await client.get(url)
    history = rows_of(detail.text, "classification-history")
    assert len(history) == 1 and "多期逾期, 担保不足" in history[0] and ZH("Substandard") in history[0]
    assert shows(detail, "In litigation")
    assert fact(detail.text, "suggested") == ZH("Substandard")  # the restructured flag's rule


async def test_viewer_is_refused_every_write(client, db, tenant_a, book):
    customer = await book.customer()
    collateral = await book.collateral(customer)
    loan = await book.loan(customer)
    repayment = await book.repay(loan, "100")
    viewer = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, viewer)
    slug = tenant_a.slug
    page = await client.get(f"/t/{slug}/loans/{loan}")
    assert page.status_code == 200 and 'id="repayment-form"' not in page.text
    for path, data in [
        (f"/t/{slug}/customers/{customer}/collateral", {"kind": "land", "appraised_value": "1"}),
        (f"/t/{slug}/collateral/{collateral}/appraisals", {"appraised_value": "1"}),
        (
            f"/t/{slug}/customers/{customer}/loans",
            {"product": "x", "amount": "1", "annual_rate": "1", "term_months": "1"},
        ),
        (f"/t/{slug}/loans/{loan}/repayments", {"amount": "1"}),
        (f"/t/{slug}/loans/{loan}/repayments/{repayment}/reverse", {"reason": "试试看"}),
        (f"/t/{slug}/loans/{loan}/classify", {"classification": "loss", "reason": "试试看"}),
        (f"/t/{slug}/loans/{loan}/flags", {"flags": "fraud"}),
        (f"/t/{slug}/settings/classification", {"classification": "loss", "min_days_past_due": "1"}),
    ]:
        assert (await post(client, path, data)).status_code == 403, path
    counts = await book.counts(customer_id=customer, loan_id=loan)
    assert counts == {"collateral": 1, "loans": 1, "repayments": 1, "reversed": 0, "decisions": 0, "flags": 0}


async def test_another_officers_loan_is_not_found(client, db, tenant_a, book):
    customer = await book.customer()
    collateral = await book.collateral(customer)
    loan = await book.loan(customer)
    repayment = await book.repay(loan, "100")
    other = await add_user(db, tenant_a.tenant, "loan_officer")
    await web_sign_in(client, tenant_a.slug, other)
    slug = tenant_a.slug
    assert (await client.get(f"/t/{slug}/loans/{loan}")).status_code == 404
    assert (await client.get(f"/t/{slug}/loans/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"/t/{slug}/loans/nonsense")).status_code == 404
    for path, data in [
        (f"/t/{slug}/loans/{loan}/repayments", {"amount": "1"}),
        (f"/t/{slug}/loans/{loan}/repayments/{repayment}/reverse", {"reason": "不是我的"}),
        (f"/t/{slug}/collateral/{collateral}/appraisals", {"appraised_value": "1"}),
        (f"/t/{slug}/customers/{customer}/collateral", {"kind": "land", "appraised_value": "1"}),
        (
            f"/t/{slug}/customers/{customer}/loans",
            {"product": "x", "amount": "1", "annual_rate": "1", "term_months": "1"},
        ),
    ]:
        assert (await post(client, path, data)).status_code == 404, path
    listing = await client.get(f"/t/{slug}/loans")
    assert str(loan) not in listing.text
    assert (await book.counts(loan_id=loan))["repayments"] == 1


# --- the portfolio ---


async def test_portfolio_filters_pages_and_htmx(client, db, fresh_tenant):
    officer = await add_user(db, fresh_tenant.tenant, "loan_officer")
    book = Book(db, fresh_tenant.tenant, officer)
    customer = await book.customer()
    late = await book.loan(customer, product="逾期贷", start_date=overdue_start().isoformat())
    for number in range(25):
        await book.loan(customer, product=f"正常贷{number}", amount="10000")
    await web_sign_in(client, fresh_tenant.slug, officer)
    base = f"/t/{fresh_tenant.slug}/loans"

    first = await client.get(base)
    assert first.status_code == 200 and shows(first, "Loans")
    assert len(rows_of_portfolio(first.text)) == 25 and 'rel="next"' in first.text
    next_url = re.search(r'href="([^"]+)"[^>]*rel="next"', first.text).group(1).replace("&amp;", "&")
    second = await client.get(next_url)
    assert len(rows_of_portfolio(second.text)) == 1 and "逾期贷" in second.text  # the oldest
    assert 'rel="next"' not in second.text

    bucket = (await book.arrears(late)).bucket  # about 90 days: 61-90 or 91-180 by the calendar
    overdue = await client.get(f"{base}?bucket={bucket}")
    rows = rows_of_portfolio(overdue.text)
    assert len(rows) == 1 and "逾期贷" in rows[0] and f"bucket-{bucket}" in rows[0]
    current = await client.get(f"{base}?bucket=current&status=active")
    assert len(rows_of_portfolio(current.text)) == 25 and "逾期贷" not in current.text
    assert 'value="current" selected' in current.text

    risk = await add_user(db, fresh_tenant.tenant, "risk_officer")
    async with tenant_session(db, fresh_tenant.tenant) as session:
        principal = await principal_of(db, fresh_tenant.tenant, risk)
        await LoanService(session, principal).classify(late, "doubtful", "多期逾期")
    doubtful = await client.get(
        f"{base}?classification=doubtful", headers={**HTMX, "HX-Target": "loan-results"}
    )
    assert "<html" not in doubtful.text and doubtful.text.lstrip().startswith('<div id="loan-results">')
    assert doubtful.headers["hx-push-url"] == f"{base}?classification=doubtful"
    assert len(rows_of_portfolio(doubtful.text)) == 1 and "class-doubtful" in doubtful.text
    junk = await client.get(f"{base}?bucket=999&classification=x&status=y&after=not-a-cursor")
    assert junk.status_code == 200 and len(rows_of_portfolio(junk.text)) == 25


def rows_of_portfolio(html: str) -> list[str]:
    body = html.split('<div id="loan-results">')[1].split("<tbody>")[1].split("</tbody>")[0]
    return [row for row in re.findall(r"<tr[^>]*>.*?</tr>", body, re.S) if 'class="empty"' not in row]


async def test_nav_links_loans_and_the_calculator_stays_reachable(client, tenant_a, officer):
    listing = await client.get(f"/t/{tenant_a.slug}/customers")
    assert f'href="/t/{tenant_a.slug}/loans"' in listing.text
    loans = await client.get(f"/t/{tenant_a.slug}/loans")
    assert f'href="/t/{tenant_a.slug}/loans/calculator"' in loans.text


# --- classification rules ---


async def test_classification_rules_page(client, db, fresh_tenant):
    risk = await add_user(db, fresh_tenant.tenant, "risk_officer")
    book = Book(db, fresh_tenant.tenant, risk)
    before = await book.rules()
    await web_sign_in(client, fresh_tenant.slug, risk)
    url = f"/t/{fresh_tenant.slug}/settings/classification"
    assert (await client.get(f"/t/{fresh_tenant.slug}/settings", follow_redirects=False)).headers[
        "location"
    ] == url
    page = await client.get(url)
    assert page.status_code == 200 and 'value="91"' in page.text

    refused = await post(
        client,
        url,
        {
            "classification": ["substandard", "doubtful", ""],
            "min_days_past_due": ["abc", "200", ""],
            "flag": ["", "bankruptcy", ""],
        },
    )
    assert refused.status_code == 422
    assert shows(refused, "Enter whole days from 1 to 10000.")
    assert shows(refused, "Each rule needs either a number of days past due or a flag, not both.")
    assert 'value="abc"' in refused.text  # the rows come back as typed
    assert await book.rules() == before

    saved = await post(
        client,
        url,
        {
            "classification": ["special_mention", "substandard", "loss", ""],
            "min_days_past_due": ["15", "", "400", ""],
            "flag": ["", "fraud", "", ""],
        },
    )
    assert saved.status_code == 303
    rules = [(r.classification, r.min_days_past_due, r.flag) for r in await book.rules()]
    assert rules == [("special_mention", 15, None), ("substandard", None, "fraud"), ("loss", 400, None)]

    officer = await add_user(db, fresh_tenant.tenant, "loan_officer")
    await web_sign_in(client, fresh_tenant.slug, officer)
    assert (await client.get(url)).status_code == 403
    assert (await post(client, url, {"classification": "loss", "min_days_past_due": "1"})).status_code == 403
    assert len(await book.rules()) == 3


async def test_money_on_pages_is_decimal_exact(client, tenant_a, book):
    customer = await book.customer()
    loan = await book.loan(customer, amount="100000.01", term_months="3", annual_rate="0")
    detail = await client.get(f"/t/{tenant_a.slug}/loans/{loan}")
    amounts = [
        Decimal(a.replace(",", ""))
        for a in re.findall(
            r"¥([\d,]+\.\d{2})", detail.text.split('id="schedule-table"')[1].split("</table>")[0]
        )
    ]
    assert sum(amounts[0::6]) == Decimal("100000.01")  # the principal column reconciles to the cent
