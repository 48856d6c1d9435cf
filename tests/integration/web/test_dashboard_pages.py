"""The dashboard page and its JSON: figures within the viewer's record scope, in both languages."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from tenantcrm.contacts.service import ContactService
from tenantcrm.loans.schedule import add_months
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.web.test_lending_pages import ZH, Book


@pytest.fixture(scope="module")
async def desk(lifecycle, db):
    """A tenant where one officer has a late loan, a follow-up due and a flag; another has a clean loan."""
    fixture = await make_tenant(lifecycle, "desk")
    tenant = fixture.tenant
    officer = await add_user(db, tenant, "loan_officer")
    other = await add_user(db, tenant, "loan_officer")
    mine, theirs = Book(db, tenant, officer), Book(db, tenant, other)
    late = await mine.customer(region_code="310000", credit_grade="BB")
    started = add_months(date.today(), -3).isoformat()
    await mine.loan(late, amount="120000", start_date=started)
    clean = await theirs.customer(region_code="110000", credit_grade="A")
    await theirs.loan(clean, amount="80000")
    async with tenant_session(db, tenant) as session:
        principal = await principal_of(db, tenant, officer)
        await ContactService(session, principal).plan_follow_up(
            late, {"due_on": date.today().isoformat(), "channel": "phone", "note": "催收提醒"}
        )
        admin = await principal_of(db, tenant, fixture.admin_email)
        await WarningService(session, admin).evaluate()
    return fixture, officer, other


async def test_dashboard_page_shows_the_officers_own_book(client, desk) -> None:
    fixture, officer, _other = desk
    assert (await web_sign_in(client, fixture.slug, officer)).status_code == 303

    response = await client.get(f"/t/{fixture.slug}/dashboard")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    text = response.text
    assert ZH("Dashboard") in text and ZH("Customers by credit grade") in text
    assert 'id="kpi-customers">1<' in text  # the other officer's customer is out of scope
    assert "¥120,000.00" in text and "¥80,000.00" not in text  # disbursed this quarter, own loan only
    assert "上海市" in text and "北京市" not in text  # regions table, in zh-CN
    assert 'data-chart="trend"' in text and "/static/vendor/echarts.min.js" in text
    embedded = text.split('<script type="application/json" id="dashboard-data">')[1].split("</script>")[0]
    assert json.loads(embedded)["kpis"]["customers"] == 1  # the charts' first drawing needs no request
    assert ZH("Nothing due today.") not in text  # the follow-up planned for today is listed
    assert ZH("Overdue amount") in text


async def test_dashboard_json_is_exact_scoped_and_translated(client, desk) -> None:
    fixture, officer, _other = desk
    await web_sign_in(client, fixture.slug, officer)

    zh = (await client.get(f"/t/{fixture.slug}/dashboard.json")).json()
    await client.get("/lang/en", follow_redirects=False)
    en = (await client.get(f"/t/{fixture.slug}/dashboard.json")).json()

    assert zh["kpis"]["customers"] == 1 and zh["kpis"]["followUpsDueToday"] == 1
    assert Decimal(zh["kpis"]["outstanding"]) > Decimal("0")
    assert Decimal(zh["kpis"]["overdue"]) > Decimal("0")  # three months without a repayment
    assert zh["kpis"]["overdue"].count(".") == 1 and len(zh["kpis"]["overdue"].split(".")[1]) == 2
    assert [s["key"] for s in zh["creditGrades"]] == ["BB"]
    assert [(r["key"], r["label"]) for r in zh["regions"]] == [("310000", "上海市")]
    assert [(r["key"], r["label"]) for r in en["regions"]] == [("310000", "Shanghai")]
    assert len(zh["trend"]) == 12 and zh["trend"][-1]["month"] == date.today().strftime("%Y-%m")
    assert zh["series"]["disbursed"] == ZH("Disbursed") and en["series"]["disbursed"] == "Disbursed"
    assert {c["key"] for c in zh["classes"]} <= {"normal", "special_mention", "substandard"}


async def test_admin_sees_every_customer_and_the_flag(client, desk) -> None:
    fixture, _officer, _other = desk
    await web_sign_in(client, fixture.slug, fixture.admin_email)

    data = (await client.get(f"/t/{fixture.slug}/dashboard.json")).json()
    page = await client.get(f"/t/{fixture.slug}/dashboard")

    assert data["kpis"]["customers"] == 2
    assert {r["key"] for r in data["regions"]} == {"310000", "110000"}
    assert data["kpis"]["flaggedCustomers"] == 1  # the late loan trips the days-past-due rule
    assert ZH("Days past due") in page.text


async def test_dashboard_needs_a_signed_in_user_of_the_tenant(client, desk, tenant_b) -> None:
    fixture, officer, _other = desk

    anonymous = await client.get(f"/t/{fixture.slug}/dashboard.json", follow_redirects=False)
    await web_sign_in(client, fixture.slug, officer)
    elsewhere = await client.get(f"/t/{tenant_b.slug}/dashboard.json", follow_redirects=False)

    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    assert elsewhere.status_code == 404


async def test_grades_and_classes_come_in_their_own_order(db, lifecycle) -> None:
    from tenantcrm.dashboard.service import DashboardService

    fixture = await make_tenant(lifecycle, "order")
    book = Book(db, fixture.tenant, fixture.admin_email)
    for grade in ("B", "AAA", "BB", None, "A"):
        await book.customer(**({"credit_grade": grade} if grade else {}))
    async with tenant_session(db, fixture.tenant) as session:
        admin = await principal_of(db, fixture.tenant, fixture.admin_email)
        grades = await DashboardService(session, admin).credit_grades()
    assert [s.key for s in grades] == ["AAA", "A", "BB", "B", "none"]
