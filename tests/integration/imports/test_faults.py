"""Faulty files and rows: refused files write nothing; bad rows are reported by field and problem,
never by value; duplicates within the file and against existing customers; the two modes."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerFilter, CustomerService
from tenantcrm.imports.models import ImportJob
from tenantcrm.imports.report import ProblemReport
from tenantcrm.imports.service import row_errors
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tenantcrm.web.i18n import translations
from tests.integration.imports.sheets import HEADERS, csv_bytes, people, person, resident_id, xlsx

BAD_ID = resident_id(7)[:-1] + ("0" if resident_id(7)[-1] != "0" else "1")  # wrong check digit


async def nothing_written(shop) -> None:
    assert await shop.count(ImportJob) == 0
    assert await shop.count(Customer) == 0


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("photo.xlsx", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "unreadable"),
        ("report.csv", b"%PDF-1.7\n\x00\x01\x02binary", "unreadable"),
        ("truncated.xlsx", xlsx(people(50))[:1500], "unreadable"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "legacy_xls"),
        ("empty.csv", b"", "empty"),
        ("numbers.csv", csv_bytes([[1, 2, 3]], headers=("甲", "乙", "丙")), "no_header"),
    ],
)
async def test_a_file_that_is_not_a_usable_sheet_is_refused_and_nothing_is_written(shop, name, content, code):
    with pytest.raises(InvalidInput) as refused:
        await shop.run(content, name)
    (error,) = refused.value.errors
    assert (error.field, error.code) == ("file", code)
    await nothing_written(shop)


async def test_a_header_without_a_name_column_is_refused_and_nothing_is_written(shop):
    headers = ("序号", "身份证号", "联系电话", "住址")
    content = xlsx([row[:1] + row[2:5] for row in people(3)], headers=headers)
    with pytest.raises(InvalidInput) as refused:
        await shop.run(content, "no-name.xlsx")
    assert [(e.field, e.code) for e in refused.value.errors] == [("mapping", "no_name")]
    await nothing_written(shop)


async def test_a_title_row_above_the_header_is_skipped(shop):
    job = await shop.run(xlsx(people(3), title_row="2024年客户台账（内部）"), "titled.xlsx")
    assert (job.status, job.created_rows) == ("done", 3)
    assert [row.row_number for row in await shop.rows(job)] == [3, 4, 5]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
async def test_csv_in_utf8_with_or_without_bom_and_gb18030(shop, encoding):
    job = await shop.run(csv_bytes(people(4), encoding=encoding), "客户.csv")
    assert (job.status, job.created_rows) == ("done", 4)
    names = {c.name for c in await shop.customers()}
    assert names == {row[1] for row in people(4)}


async def test_full_width_digits_and_stray_spaces_are_cleaned(shop):
    national_id = resident_id(42)
    full_width = (
        " ".join(national_id[:6])
        + "　"
        + national_id[6:].translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    )
    row = [
        1,
        "  张 三 ",
        full_width,
        " １３８ ００１３ ８０００ ",
        "  上海市浦东新区  世纪大道1号 ",
        "１２０００",
        " aa ",
    ]
    job = await shop.run(xlsx([row]), "messy.xlsx")

    assert (job.status, job.created_rows, job.problem_rows) == ("done", 1, 0)
    (customer,) = await shop.customers()
    assert customer.name == "张 三"
    assert customer.national_id_masked == national_id[:4] + "*" * 10 + national_id[-4:]
    assert customer.phone_masked == "138****8000"
    assert customer.monthly_income == Decimal("12000.00") and customer.credit_grade == "AA"
    async with tenant_session(shop.db, shop.tenant) as session:
        # Indexed exactly as CustomerService indexes: a search by the clean number finds the customer.
        found = await CustomerService(session, shop.admin, shop.cipher).list_customers(
            filter=CustomerFilter(search=national_id)
        )
        assert [c.id for c in found.customers] == [customer.id]
        revealed = await CustomerService(session, shop.admin, shop.cipher).reveal_pii(
            customer.id, ["national_id", "phone", "address"], purpose="import test", channel="web"
        )
    assert revealed == {
        "national_id": national_id,
        "phone": "13800138000",
        "address": "上海市浦东新区 世纪大道1号",
    }


def faulty_sheet() -> bytes:
    rows = people(6)
    rows[1][2] = BAD_ID  # row 3: wrong check digit
    rows[2][1] = ""  # row 4: no name
    rows[3][2] = rows[0][2]  # row 5: the ID of row 2
    rows[4][3] = rows[0][3]  # row 6: row 2's phone under another name: a family member, not a duplicate
    rows.append(list(rows[0]))  # row 8: row 2 again
    rows[-1][2] = resident_id(500)  # ...with another ID: two people
    rows.append([99, rows[0][1], None, rows[0][3], None, None, None])  # row 9: row 2's name and phone, no ID
    return xlsx(rows)


async def test_skip_invalid_imports_the_good_rows_and_reports_the_others(shop, settings):
    job = await shop.run(faulty_sheet(), "faulty.xlsx", mode="skip_invalid")

    assert (job.status, job.valid_rows, job.invalid_rows, job.duplicate_rows, job.created_rows) == (
        "done",
        4,
        2,
        2,
        4,
    )
    problems = {
        row.row_number: [(e.field, e.code) for e in row_errors(row)]
        for row in await shop.rows(job)
        if row.errors
    }
    assert problems == {
        3: [("national_id", "invalid_check_digit")],
        4: [("name", "required")],
        5: [("national_id", "duplicate_in_file")],
        9: [("phone", "duplicate_in_file")],
    }
    assert len(await shop.customers()) == 4

    report = ProblemReport(translations(settings.web_dir / "locale", "en").gettext)
    async with tenant_session(shop.db, shop.tenant) as session:
        async for row in shop.service(session).problem_rows(job.id):
            report.add(row)
    sheet = load_workbook(io.BytesIO(report.to_bytes()), read_only=True).active
    lines = [list(line) for line in sheet.iter_rows(values_only=True)]
    assert lines[0] == ["Row", "Name", "Field", "Problem"]
    assert lines[1] == [3, person(1)[1], "Identity number", "The check digit of this ID number is wrong."]
    assert lines[2] == [4, None, "Name", "Name is required."]
    assert lines[3] == [5, person(3)[1], "Identity number", "The same identity number as row 2."]
    assert lines[4] == [9, person(0)[1], "Phone", "The same name and phone number as row 2."]
    text = repr(lines)
    assert BAD_ID not in text and person(0)[2] not in text and person(0)[3] not in text, "no refused value"


async def test_all_or_nothing_with_one_bad_row_creates_nothing(shop):
    rows = people(5)
    rows[3][2] = BAD_ID
    with pytest.raises(InvalidInput) as refused:
        await shop.run(xlsx(rows), "one-bad.xlsx", mode="all_or_nothing")
    assert [(e.field, e.code, e.params) for e in refused.value.errors] == [
        ("mode", "rows_with_problems", {"count": "1"})
    ]
    assert await shop.count(Customer) == 0
    (job,) = [await shop.job(j.id) for j in await _jobs(shop)]
    assert job.status == "cancelled" and job.file_enc is None


async def _jobs(shop) -> list[ImportJob]:
    async with tenant_session(shop.db, shop.tenant) as session:
        return list(await session.scalars(select(ImportJob)))


async def test_duplicates_of_existing_customers_by_id_and_by_name_and_phone(shop):
    rows = people(4)
    async with tenant_session(shop.db, shop.tenant) as session:
        customers = CustomerService(session, shop.admin, shop.cipher)
        await customers.create_customer(
            {"name": "早已有之", "national_id": rows[0][2]}
        )  # same ID, other name
        await customers.create_customer({"name": rows[1][1], "phone": rows[1][3]})  # same name and phone
        await customers.create_customer({"name": "家人", "phone": rows[2][3]})  # same phone, other name
    job = await shop.run(xlsx(rows), "again.xlsx")

    found = {row.row_number: [(e.field, e.code) for e in row_errors(row)] for row in await shop.rows(job)}
    assert found == {2: [("national_id", "duplicate")], 3: [("phone", "duplicate")], 4: [], 5: []}
    assert (job.created_rows, job.duplicate_rows) == (2, 2)
    assert await shop.count(Customer) == 5


async def test_an_excel_number_that_lost_the_id_digits_is_invalid_not_imported(shop):
    row = person(3)
    row[2] = float(row[2][:17] + "0")  # Excel keeps 15 significant digits of a typed-in ID
    job = await shop.run(xlsx([row, person(4)]), "numbers.xlsx")
    assert (job.created_rows, job.invalid_rows) == (1, 1)
    (bad, _) = await shop.rows(job)
    assert [e.field for e in row_errors(bad)] == ["national_id"]


async def test_a_loans_import_needs_an_amount_on_every_row(shop):
    headers = (*HEADERS, "贷款金额", "年利率", "贷款期限(月)", "还款方式")
    rows = [[*person(0), "300万", "4.9%", 120, "等额本金"], [*person(1), None, None, None, None]]
    job = await shop.run(xlsx(rows, headers=headers), "loans.xlsx", kind="loans")

    assert (job.created_rows, job.invalid_rows) == (1, 1)
    (good, bad) = await shop.rows(job)
    assert (
        good.values["loan"]["amount"] == "3000000.00" and good.values["loan"]["method"] == "equal_principal"
    )
    assert [(e.field, e.code) for e in row_errors(bad)] == [("loan", "missing")]
