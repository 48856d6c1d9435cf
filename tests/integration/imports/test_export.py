"""Exports: the customer list and the loan portfolio as .xlsx with typed cells, within the
exporter's record scope, personal data masked, audited; `export` required."""

from __future__ import annotations

import io
import secrets
from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import select

from tenantcrm.audit.models import AuditEvent
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.service import LoanService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, principal_of
from tests.integration.imports.sheets import resident_id
from tests.integration.imports.test_pages import XLSX, browser


def workbook_lines(content: bytes) -> list[tuple]:
    sheet = load_workbook(io.BytesIO(content)).active
    return [tuple(cell for cell in row) for row in sheet.iter_rows()]


async def customer(shop, principal, name: str, **extra) -> None:
    async with tenant_session(shop.db, shop.tenant) as session:
        await CustomerService(session, principal, shop.cipher).create_customer({"name": name, **extra})


async def test_customers_export_typed_cells_masked_pii_and_an_audit_event(app, shop):
    national_id = resident_id(77)
    await customer(
        shop,
        shop.admin,
        "导出甲",
        national_id=national_id,
        phone="13800138000",
        monthly_income="1.5万",
        risk_level="high",
        credit_score="720",
    )
    await customer(shop, shop.admin, "导出乙", risk_level="low")
    async with browser(app, shop.fixture.slug, shop.fixture.admin_email) as client:
        response = await client.get(
            f"/t/{shop.fixture.slug}/customers/export.xlsx?risk_level=high&sort=name&direction=asc",
            headers={"Accept-Language": "en"},
        )
    assert response.status_code == 200 and response.headers["content-type"].startswith(XLSX)
    assert response.headers["content-disposition"].startswith('attachment; filename="customers-')
    assert response.headers["cache-control"] == "no-store"
    header, *rows = workbook_lines(response.content)
    titles = [cell.value for cell in header]
    assert titles[:4] == ["Name", "Type", "Identity number", "Phone"]
    (row,) = rows
    values = dict(zip(titles, row, strict=True))
    assert values["Name"].value == "导出甲" and values["Risk level"].value == "High"
    assert values["Identity number"].value == national_id[:4] + "*" * 10 + national_id[-4:]
    assert values["Phone"].value == "138****8000"
    assert national_id not in repr([c.value for c in row]) and "13800138000" not in repr(
        [c.value for c in row]
    )
    income = values["Monthly income"]
    assert Decimal(str(income.value)) == Decimal("15000") and income.number_format == '"¥"#,##0.00'
    assert values["Credit score"].value == 720
    born = values["Birth date"]
    assert isinstance(born.value, datetime) and born.number_format == "yyyy-mm-dd"
    async with tenant_session(shop.db, shop.tenant) as session:
        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "export"))
    assert (event.entity_type, event.changes["count"], event.changes["masked"]) == ("customer", 1, True)
    assert event.changes["filters"] == {"risk_level": "high"}


async def test_exports_follow_the_record_scope(app, shop, db):
    manager = await add_user(db, shop.tenant, "manager")  # record scope team, in no team: own only
    await customer(shop, shop.admin, "管理员的客户")
    await customer(shop, await principal_of(db, shop.tenant, manager), "经理的客户")
    async with browser(app, shop.fixture.slug, manager) as client:
        response = await client.get(f"/t/{shop.fixture.slug}/customers/export.xlsx")
    names = [row[0].value for row in workbook_lines(response.content)[1:]]
    assert names == ["经理的客户"]


async def test_no_export_without_the_export_permission(app, shop, db):
    slug = shop.fixture.slug
    for role in ("viewer", "loan_officer"):  # both read customers; neither holds `export`
        email = await add_user(db, shop.tenant, role)
        async with browser(app, slug, email) as client:
            assert (await client.get(f"/t/{slug}/customers/export.xlsx")).status_code == 403
            assert (await client.get(f"/t/{slug}/loans/export.xlsx")).status_code == 403
    async with tenant_session(shop.db, shop.tenant) as session:
        assert await session.scalar(select(AuditEvent).where(AuditEvent.action == "export")) is None


async def test_loan_portfolio_export_has_money_rates_and_dates(app, shop):
    name = f"借款人{secrets.token_hex(2)}"
    await customer(shop, shop.admin, name)
    async with tenant_session(shop.db, shop.tenant) as session:
        (found,) = (await CustomerService(session, shop.admin).list_customers()).customers
        await LoanService(session, shop.admin).create_loan(
            found.id,
            {
                "product": "房抵贷",
                "amount": "300万",
                "annual_rate": "4.9%",
                "term_months": "120",
                "method": "equal_installment",
                "start_date": "2025-01-15",
            },
        )
    async with browser(app, shop.fixture.slug, shop.fixture.admin_email) as client:
        response = await client.get(f"/t/{shop.fixture.slug}/loans/export.xlsx?status=active")
    assert response.status_code == 200
    header, row = workbook_lines(response.content)
    values = dict(zip([c.value for c in header], row, strict=True))
    amount = values["金额"] if "金额" in values else row[2]
    assert Decimal(str(amount.value)) == Decimal("3000000") and amount.number_format == '"¥"#,##0.00'
    assert row[0].value == name
    assert Decimal(str(row[3].value)) == Decimal("0.049") and row[3].number_format == "0.00%"
    assert row[6].value.date() == date(2025, 1, 15) and row[6].number_format == "yyyy-mm-dd"
    assert isinstance(row[10].value, int)  # days past due
