"""Risk pages: the case board, opening a case from a flag, measures, closing, warnings and rules.

Every refused form answers 422 with its message in the reader's language and writes nothing;
users without risk.manage are not offered the forms and get 403 when they post anyway; cases of
customers outside the reader's record scope are not found.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from markupsafe import escape

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.service import find_user_by_email
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
EN = {"Accept-Language": "en"}
HTMX = {"HX-Request": "true"}


def shows(response, message: str, zh: bool = True, **params: object) -> bool:
    """Whether the page shows the message (in Chinese unless `zh` is false), as HTML escapes it."""
    text = ZH(message) if zh else message
    return str(escape(text % params if params else text)) in response.text


async def post(client, path: str, data: dict | None = None, **kwargs):
    data = {"_csrf_token": client.cookies["csrftoken"], **(data or {})}
    return await client.post(path, data=data, follow_redirects=False, **kwargs)


@dataclass
class Desk:
    """A tenant of this module's own (its rules are changed here) and who works in it."""

    db: object
    tenant: object
    risk: str  # risk_officer: risk.manage over all customers
    officer: str  # loan_officer: owns the customers, no risk.manage
    viewer: str
    narrow: str  # a custom role with risk.manage over its own customers only

    @property
    def slug(self) -> str:
        return self.tenant.slug

    async def customer(self, **values) -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.officer)
            row = await CustomerService(session, principal).create_customer(
                {"kind": "individual", "name": f"风险客户 {uuid.uuid4().hex[:6]}", **values}
            )
            return row.id

    async def overdue_loan(self, customer_id: uuid.UUID) -> uuid.UUID:
        """Started four months back and never repaid: three instalments overdue."""
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.officer)
            loan = await LoanService(session, principal).create_loan(
                customer_id,
                {
                    "product": "房抵经营贷",
                    "amount": "200000",
                    "annual_rate": "6%",
                    "term_months": "24",
                    "method": "equal_installment",
                    "start_date": add_months(date.today(), -4).isoformat(),
                },
            )
            return loan.id

    async def open_case(self, customer_id: uuid.UUID, description: str = "逾期调查") -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            case = await RiskCaseService(session, principal).open_case(
                customer_id, {"trigger": "overdue", "description": description}
            )
            return case.id

    async def add_measure(self, case_id: uuid.UUID, due_on: date, description: str = "上门核查") -> uuid.UUID:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            measure = await RiskCaseService(session, principal).add_measure(
                case_id, {"description": description, "due_on": due_on.isoformat()}
            )
            return measure.id

    async def case_file(self, case_id):
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            return await RiskCaseService(session, principal).case_file(case_id)

    async def cases_of(self, customer_id: uuid.UUID) -> list:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            return (await RiskCaseService(session, principal).cases_for_customers([customer_id]))[customer_id]

    async def flags_of(self, customer_id: uuid.UUID) -> list:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            return (await WarningService(session, principal).for_customers([customer_id]))[customer_id]

    async def rules(self) -> dict[str, tuple[object, bool]]:
        async with tenant_session(self.db, self.tenant) as session:
            principal = await principal_of(self.db, self.tenant, self.risk)
            return {
                r.kind: (r.threshold, r.enabled) for r in await WarningService(session, principal).rules()
            }


@pytest.fixture(scope="module")
async def desk(lifecycle, db) -> Desk:
    fixture = await make_tenant(lifecycle, "riskweb")
    tenant = fixture.tenant
    narrow = await add_user(db, tenant, "viewer")
    admin = await principal_of(db, tenant, fixture.admin_email)
    async with tenant_session(db, tenant) as session:
        service = AccessAdminService(session, admin)
        await service.create_role(
            "risk_own", record_scope="own", permissions={"customers.read", "risk.manage"}
        )
        user = await find_user_by_email(session, narrow)
        await service.assign(user.id, role="risk_own", team_id=None)
    return Desk(
        db=db,
        tenant=tenant,
        risk=await add_user(db, tenant, "risk_officer"),
        officer=await add_user(db, tenant, "loan_officer"),
        viewer=await add_user(db, tenant, "viewer"),
        narrow=narrow,
    )


async def signed_in(client, desk: Desk, email: str):
    assert (await web_sign_in(client, desk.slug, email)).status_code == 303
    return client


def row_of(html: str, element_id: str) -> str:
    found = re.search(rf'<(tr|article)[^>]*id="{element_id}".*?</\1>', html, re.S)
    assert found, f"no row {element_id}"
    return found.group(0)


# --- every page, both languages ---


async def test_each_page_renders_in_chinese_and_english(client, desk):
    customer = await desk.customer()
    case_id = await desk.open_case(customer)
    await desk.add_measure(case_id, date.today() + timedelta(days=7))
    await signed_in(client, desk, desk.risk)
    pages = {
        f"/t/{desk.slug}/risk": "Risk cases",
        f"/t/{desk.slug}/risk/cases/new?customer={customer}": "Open a risk case",
        f"/t/{desk.slug}/risk/cases/{case_id}": "Work the case",
        f"/t/{desk.slug}/risk/warnings": "Run the rules now",
        f"/t/{desk.slug}/settings/warnings": "Early-warning rules",
    }
    for path, message in pages.items():
        chinese = await client.get(path)
        assert chinese.status_code == 200, path
        assert shows(chinese, message) and ZH(message) != message, path
        english = await client.get(path, headers=EN)
        assert english.status_code == 200 and shows(english, message, zh=False), path
        assert not shows(english, message), path


# --- the board ---


async def test_the_board_shows_cases_by_status_with_overdue_measures_highlighted(client, desk):
    late_customer, calm_customer = await desk.customer(), await desk.customer()
    late_case = await desk.open_case(late_customer)
    await desk.add_measure(late_case, date.today() - timedelta(days=3))
    await desk.add_measure(late_case, date.today() + timedelta(days=3))
    calm_case = await desk.open_case(calm_customer)
    await signed_in(client, desk, desk.viewer)

    board = await client.get(f"/t/{desk.slug}/risk")
    assert board.status_code == 200
    in_progress = re.search(r'id="column-in_progress".*?</section>', board.text, re.S).group(0)
    opened = re.search(r'id="column-open".*?</section>', board.text, re.S).group(0)
    assert f'id="case-{late_case}"' in in_progress and f'id="case-{calm_case}"' in opened
    late = row_of(board.text, f"case-{late_case}")
    assert "is-overdue" in late and re.search(r'open-measures">2<', late)
    assert re.search(r'overdue-measures"><span class="badge badge-high">1<', late)
    calm = row_of(board.text, f"case-{calm_case}")
    assert "is-overdue" not in calm and shows(board, "Overdue loan")
    assert f'href="/t/{desk.slug}/risk/warnings"' in board.text
    assert f'href="/t/{desk.slug}/settings/warnings"' in board.text


# --- opening a case from a flag ---


async def test_a_flag_is_raised_by_running_the_rules_and_a_case_opens_from_it(client, desk):
    customer = await desk.customer()
    loan_id = await desk.overdue_loan(customer)
    await signed_in(client, desk, desk.risk)

    ran = await post(client, f"/t/{desk.slug}/risk/warnings/evaluate")
    assert ran.status_code == 303 and re.search(r"\?raised=\d+&cleared=\d+$", ran.headers["location"])
    (flag,) = [f for f in await desk.flags_of(customer) if f.kind == "days_past_due"]
    listed = await client.get(ran.headers["location"])
    assert re.search(r'id="evaluated"', listed.text)
    row = row_of(listed.text, f"warning-{flag.id}")
    days = flag.details["days_past_due"]
    assert str(escape(ZH("%(days)s days past due") % {"days": days})) in row
    open_link = f"/t/{desk.slug}/risk/cases/new?customer={customer}&amp;warning={flag.id}"
    assert open_link in row

    english = await client.get(f"/t/{desk.slug}/risk/warnings?kind=days_past_due", headers=EN)
    assert f"{days} days past due" in row_of(english.text, f"warning-{flag.id}")
    other_kind = await client.get(f"/t/{desk.slug}/risk/warnings?kind=debt_to_income")
    assert f"warning-{flag.id}" not in other_kind.text
    partial = await client.get(
        f"/t/{desk.slug}/risk/warnings?kind=days_past_due", headers={**HTMX, "HX-Target": "warning-results"}
    )
    assert "<html" not in partial.text and partial.text.lstrip().startswith('<div id="warning-results">')
    assert partial.headers["hx-push-url"] == f"/t/{desk.slug}/risk/warnings?kind=days_past_due"

    form = await client.get(open_link.replace("&amp;", "&"))
    assert form.status_code == 200
    assert f'name="warning_id" value="{flag.id}"' in form.text
    assert str(escape(ZH("%(days)s days past due") % {"days": days})) in form.text  # the description prefill
    assert f'value="{loan_id}"' in form.text

    created = await post(
        client,
        f"/t/{desk.slug}/risk/cases",
        {
            "customer_id": str(customer),
            "warning_id": str(flag.id),
            "description": "三期未还电话不通",
            "loan_id": str(loan_id),
            "owner_id": "",
        },
    )
    assert created.status_code == 303
    (case,) = await desk.cases_of(customer)
    assert created.headers["location"] == f"/t/{desk.slug}/risk/cases/{case.id}"
    assert (case.trigger, case.loan_id, case.warning_id, case.description) == (
        "early_warning",
        loan_id,
        flag.id,
        "三期未还电话不通",
    )
    page = await client.get(created.headers["location"])
    assert "三期未还电话不通" in page.text and shows(page, "Early warning")
    relisted = await client.get(f"/t/{desk.slug}/risk/warnings")
    assert f'href="/t/{desk.slug}/risk/cases/{case.id}"' in row_of(relisted.text, f"warning-{flag.id}")


async def test_a_case_opened_by_hand_takes_trigger_owner_and_loan(client, desk):
    customer = await desk.customer()
    await signed_in(client, desk, desk.risk)
    async with tenant_session(desk.db, desk.tenant) as session:
        officer_id = (await find_user_by_email(session, desk.officer)).id
    created = await post(
        client,
        f"/t/{desk.slug}/risk/cases",
        {
            "customer_id": str(customer),
            "trigger": "external",
            "description": "法院传票",
            "owner_id": str(officer_id),
        },
    )
    assert created.status_code == 303
    (case,) = await desk.cases_of(customer)
    assert (case.trigger, case.owner_id, case.loan_id, case.status) == ("external", officer_id, None, "open")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trigger": "manual", "description": "  "}, "This field is required."),
        ({"trigger": "gossip", "description": "x"}, "Choose one of the listed values."),
        (
            {"trigger": "manual", "description": "x", "loan_id": str(uuid.uuid4())},
            "Choose one of the listed values.",
        ),
        (
            {"trigger": "manual", "description": "x", "owner_id": str(uuid.uuid4())},
            "Choose one of the listed values.",
        ),
        ({"trigger": "manual", "description": "x" * 5001}, "Too long ({limit} characters at most)."),
    ],
)
async def test_a_bad_case_is_refused_inline_writing_nothing(client, desk, data, message):
    customer = await desk.customer()
    await signed_in(client, desk, desk.risk)
    refused = await post(client, f"/t/{desk.slug}/risk/cases", {"customer_id": str(customer), **data})
    assert refused.status_code == 422
    expected = ZH(message).format(limit=5000)
    assert str(escape(expected)) in refused.text
    assert shows(refused, "Please correct the marked fields. Nothing was saved.")
    assert 'aria-invalid="true"' in refused.text
    assert await desk.cases_of(customer) == []


async def test_a_flag_already_in_a_case_is_refused_the_second_time(client, desk):
    customer = await desk.customer()
    await desk.overdue_loan(customer)
    await signed_in(client, desk, desk.risk)
    await post(client, f"/t/{desk.slug}/risk/warnings/evaluate")
    (flag,) = [f for f in await desk.flags_of(customer) if f.kind == "days_past_due"]
    data = {"customer_id": str(customer), "warning_id": str(flag.id), "description": "逾期"}
    assert (await post(client, f"/t/{desk.slug}/risk/cases", data)).status_code == 303
    again = await post(client, f"/t/{desk.slug}/risk/cases", data)
    assert again.status_code == 422 and shows(again, "A case is already open for this warning.")
    assert len(await desk.cases_of(customer)) == 1


# --- working a case ---


async def test_measures_are_added_ticked_off_with_htmx_and_the_case_closes_with_an_outcome(client, desk):
    customer = await desk.customer()
    case_id = await desk.open_case(customer)
    await signed_in(client, desk, desk.risk)
    base = f"/t/{desk.slug}/risk/cases/{case_id}"

    added = await post(
        client,
        f"{base}/measures",
        {"description": "催收函", "due_on": (date.today() - timedelta(days=1)).isoformat(), "owner_id": ""},
    )
    assert added.status_code == 303
    (measure,) = (await desk.case_file(case_id)).measures
    assert added.headers["location"] == f"{base}#measure-{measure.id}"
    assert (await desk.case_file(case_id)).case.status == "in_progress"
    page = await client.get(base)
    row = row_of(page.text, f"measure-{measure.id}")
    assert 'class="measure overdue"' in row and "催收函" in row and shows(page, "Overdue")

    bad_date = await post(client, f"{base}/measures", {"description": "复评", "due_on": "下周"})
    assert bad_date.status_code == 422 and shows(bad_date, "Enter a date as YYYY-MM-DD.")
    assert len((await desk.case_file(case_id)).measures) == 1

    swapped = await post(
        client, f"/t/{desk.slug}/risk/measures/{measure.id}", {"status": "done"}, headers=HTMX
    )
    assert swapped.status_code == 200 and "<html" not in swapped.text
    assert swapped.text.lstrip().startswith(f'<tr id="measure-{measure.id}" class="measure"')
    assert 'data-status="done"' in swapped.text
    assert (await desk.case_file(case_id)).measures[0].status == "done"
    refused_status = await post(
        client, f"/t/{desk.slug}/risk/measures/{measure.id}", {"status": "forgotten"}, headers=HTMX
    )
    assert refused_status.status_code == 422 and shows(refused_status, "Choose one of the listed values.")
    assert (await desk.case_file(case_id)).measures[0].status == "done"
    plain = await post(client, f"/t/{desk.slug}/risk/measures/{measure.id}", {"status": "cancelled"})
    assert plain.status_code == 303 and plain.headers["location"] == f"{base}#measure-{measure.id}"

    no_outcome = await post(client, base, {"status": "closed", "outcome": "", "lessons": "查征信"})
    assert no_outcome.status_code == 422
    assert shows(no_outcome, "Record the outcome before closing the case.")
    assert "查征信" in no_outcome.text  # what was typed is kept
    unchanged = (await desk.case_file(case_id)).case
    assert (unchanged.status, unchanged.lessons) == ("in_progress", "")

    closed = await post(
        client, base, {"status": "closed", "outcome": "已结清", "lessons": "放款前查法院记录"}
    )
    assert closed.status_code == 303
    case = (await desk.case_file(case_id)).case
    assert (case.status, case.outcome, case.lessons) == ("closed", "已结清", "放款前查法院记录")
    assert case.closed_at is not None
    after = await client.get(base)
    assert 'id="measure-form"' not in after.text and shows(
        after, "The case is closed: reopen it to add measures."
    )
    board = await client.get(f"/t/{desk.slug}/risk")
    closed_column = re.search(r'id="column-closed".*?</section>', board.text, re.S).group(0)
    assert f'id="case-{case_id}"' in closed_column


# --- who may do what ---


async def test_without_risk_manage_the_forms_are_not_offered_and_posts_are_forbidden(client, desk):
    customer = await desk.customer()
    case_id = await desk.open_case(customer)
    measure_id = await desk.add_measure(case_id, date.today() + timedelta(days=5))
    await signed_in(client, desk, desk.officer)  # owns the customer, may not work its risk
    rules_before = await desk.rules()

    case_page = await client.get(f"/t/{desk.slug}/risk/cases/{case_id}")
    assert case_page.status_code == 200 and "逾期调查" in case_page.text
    for form_id in ("case-update-form", "measure-form", "measure-status"):
        assert form_id not in case_page.text
    warnings = await client.get(f"/t/{desk.slug}/risk/warnings")
    assert "evaluate-form" not in warnings.text and "/risk/cases/new" not in warnings.text
    rules = await client.get(f"/t/{desk.slug}/settings/warnings")
    assert rules.status_code == 200 and "warning-rules-form" not in rules.text
    assert (await client.get(f"/t/{desk.slug}/risk/cases/new?customer={customer}")).status_code == 403

    posts = {
        f"/t/{desk.slug}/risk/cases": {"customer_id": str(customer), "description": "x"},
        f"/t/{desk.slug}/risk/cases/{case_id}": {"status": "closed", "outcome": "x"},
        f"/t/{desk.slug}/risk/cases/{case_id}/measures": {
            "description": "x",
            "due_on": date.today().isoformat(),
        },
        f"/t/{desk.slug}/risk/measures/{measure_id}": {"status": "done"},
        f"/t/{desk.slug}/risk/warnings/evaluate": {},
        f"/t/{desk.slug}/settings/warnings": {"days_past_due.threshold": "5", "days_past_due.enabled": "on"},
    }
    for path, data in posts.items():
        assert (await post(client, path, data)).status_code == 403, path
    file = await desk.case_file(case_id)
    assert (file.case.status, len(file.measures), file.measures[0].status) == ("in_progress", 1, "planned")
    assert len(await desk.cases_of(customer)) == 1
    assert await desk.rules() == rules_before


async def test_cases_of_customers_out_of_scope_are_not_found(client, desk):
    customer = await desk.customer()  # the loan officer's: outside the narrow role's own scope
    case_id = await desk.open_case(customer)
    measure_id = await desk.add_measure(case_id, date.today() + timedelta(days=5))
    await signed_in(client, desk, desk.narrow)

    assert (await client.get(f"/t/{desk.slug}/risk/cases/{case_id}")).status_code == 404
    assert (await client.get(f"/t/{desk.slug}/risk/cases/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"/t/{desk.slug}/risk/cases/new?customer={customer}")).status_code == 404
    assert (await client.get(f"/t/{desk.slug}/risk/cases/new")).status_code == 404
    refused = [
        await post(client, f"/t/{desk.slug}/risk/cases", {"customer_id": str(customer), "description": "x"}),
        await post(client, f"/t/{desk.slug}/risk/cases/{case_id}", {"status": "closed", "outcome": "x"}),
        await post(
            client,
            f"/t/{desk.slug}/risk/cases/{case_id}/measures",
            {"description": "x", "due_on": date.today().isoformat()},
        ),
        await post(client, f"/t/{desk.slug}/risk/measures/{measure_id}", {"status": "done"}),
    ]
    assert [response.status_code for response in refused] == [404, 404, 404, 404]
    board = await client.get(f"/t/{desk.slug}/risk")
    assert board.status_code == 200 and f"case-{case_id}" not in board.text
    file = await desk.case_file(case_id)
    assert (file.case.status, len(file.measures), file.measures[0].status) == ("in_progress", 1, "planned")
    assert len(await desk.cases_of(customer)) == 1


async def test_another_tenants_case_is_not_found(client, desk, tenant_a, db):
    customer = await desk.customer()
    case_id = await desk.open_case(customer)
    email = await add_user(db, tenant_a.tenant, "risk_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    assert (await client.get(f"/t/{tenant_a.slug}/risk/cases/{case_id}")).status_code == 404
    assert (await client.get(f"/t/{tenant_a.slug}/risk/cases/new?customer={customer}")).status_code == 404


# --- the rules ---


async def test_rules_are_saved_and_bad_thresholds_refused_inline(client, desk):
    await signed_in(client, desk, desk.risk)
    page = await client.get(f"/t/{desk.slug}/settings/warnings")
    assert 'name="days_past_due.threshold" inputmode="decimal" size="8" value="30"' in page.text
    assert 'name="debt_to_income.threshold" inputmode="decimal" size="8" value="0.5"' in page.text
    assert 'name="classification_worsened.threshold"' not in page.text
    assert f'href="/t/{desk.slug}/settings/warnings" aria-current="page"' in page.text

    form = {
        "days_past_due.threshold": "60",
        "days_past_due.enabled": "on",
        "debt_to_income.threshold": "1.5",
        "debt_to_income.enabled": "on",
        "no_contact_with_overdue.threshold": "45",
        "classification_worsened.enabled": "on",
    }
    saved = await post(client, f"/t/{desk.slug}/settings/warnings", form)
    assert saved.status_code == 303 and saved.headers["location"].endswith("/settings/warnings?saved=1")
    rules = await desk.rules()
    assert {
        kind: (format(t.normalize(), "f") if t is not None else None, on) for kind, (t, on) in rules.items()
    } == {
        "days_past_due": ("60", True),
        "classification_worsened": (None, True),
        "debt_to_income": ("1.5", True),
        "no_contact_with_overdue": ("45", False),
    }
    shown = await client.get(saved.headers["location"])
    assert shows(shown, "Saved") and 'value="60"' in shown.text

    refused = await post(
        client, f"/t/{desk.slug}/settings/warnings", {**form, "days_past_due.threshold": "2.5"}
    )
    assert refused.status_code == 422
    assert str(escape(ZH("Enter a number from {low} to {high}.").format(low=1, high=3650))) in refused.text
    assert 'value="2.5"' in refused.text and 'aria-invalid="true"' in refused.text
    english = await post(
        client, f"/t/{desk.slug}/settings/warnings", {**form, "debt_to_income.threshold": "lots"}, headers=EN
    )
    assert english.status_code == 422 and "Enter a number from 0.01 to 100." in english.text
    assert await desk.rules() == rules

    restored = {
        "days_past_due.threshold": "30",
        "days_past_due.enabled": "on",
        "debt_to_income.threshold": "0.5",
        "debt_to_income.enabled": "on",
        "no_contact_with_overdue.threshold": "90",
        "no_contact_with_overdue.enabled": "on",
        "classification_worsened.enabled": "on",
    }
    assert (await post(client, f"/t/{desk.slug}/settings/warnings", restored)).status_code == 303
