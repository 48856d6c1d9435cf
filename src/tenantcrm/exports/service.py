"""ExportService: customer lists and the loan portfolio as .xlsx, within the exporter's record scope.

Personal data is always exported masked, as lists show it: a file leaves the system (mail, USB
sticks) where no access log follows it. Clear values stay behind the logged reveal of one
customer. Every export is one audited `export` event with its count and filters (no search term,
which may be a phone or ID number).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import EXPORT, Principal
from tenantcrm.customers.regions import region_name
from tenantcrm.customers.service import CipherSource, CustomerFilter, CustomerOrder, CustomerService
from tenantcrm.loans.service import LoanFilter, LoanRow, LoanService
from tenantcrm.messages import N_
from tenantcrm.segments.service import SegmentService

Gettext = Callable[[str], str]
PAGE = 100  # the services' largest page; the export walks every page of the list
MONEY = '"¥"#,##0.00'
DATE = "yyyy-mm-dd"
RATE = "0.00%"
INTEGER = "0"
# Stored codes in the reader's language (the same message ids as the pages).
VALUE_LABELS = {
    "individual": N_("Individual"),
    "enterprise": N_("Enterprise"),
    "low": N_("Low"),
    "medium": N_("Medium"),
    "high": N_("High"),
    "prospect": N_("Prospect"),
    "active": N_("Active"),
    "settled": N_("Settled"),
    "closed": N_("Closed"),
    "male": N_("Male"),
    "female": N_("Female"),
    "single": N_("Single"),
    "married": N_("Married"),
    "divorced": N_("Divorced"),
    "widowed": N_("Widowed"),
    "equal_installment": N_("Equal instalments"),
    "equal_principal": N_("Equal principal"),
    "interest_only": N_("Interest only, principal at the end"),
    "bullet": N_("All at maturity"),
    "normal": N_("Normal"),
    "special_mention": N_("Special mention"),
    "substandard": N_("Substandard"),
    "doubtful": N_("Doubtful"),
    "loss": N_("Loss"),
    "written_off": N_("Written off"),
    "cancelled": N_("Cancelled"),
}


@dataclass(frozen=True)
class Column:
    title: str  # msgid
    value: Callable[[Any], Any]
    number_format: str | None = None
    width: int = 14
    shows: str = "value"  # value | label (a stored code, in the reader's language) | region


def _day(value: datetime | date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


CUSTOMER_COLUMNS = (
    Column(N_("Name"), lambda c: c.name, width=18),
    Column(N_("Type"), lambda c: c.kind, shows="label"),
    Column(N_("Identity number"), lambda c: c.national_id_masked, width=22),
    Column(N_("Phone"), lambda c: c.phone_masked, width=16),
    Column(N_("E-mail"), lambda c: c.email_masked, width=24),
    Column(N_("Address"), lambda c: c.address_masked, width=20),
    Column(N_("Region"), lambda c: c.region_code, shows="region"),
    Column(N_("Gender"), lambda c: c.gender, shows="label"),
    Column(N_("Birth date"), lambda c: c.birth_date, DATE),
    Column(N_("Marital status"), lambda c: c.marital_status, shows="label"),
    Column(N_("Occupation"), lambda c: c.occupation, width=18),
    Column(N_("Industry"), lambda c: c.industry),
    Column(N_("Monthly income"), lambda c: c.monthly_income, MONEY, 16),
    Column(N_("Assets"), lambda c: c.assets, MONEY, 18),
    Column(N_("Liabilities"), lambda c: c.liabilities, MONEY, 18),
    Column(N_("Credit score"), lambda c: c.credit_score, INTEGER),
    Column(N_("Credit grade"), lambda c: c.credit_grade),
    Column(N_("Risk level"), lambda c: c.risk_level, shows="label"),
    Column(N_("Status"), lambda c: c.status, shows="label"),
    Column(N_("Tags"), lambda c: ", ".join(c.tags or []) or None, width=20),
    Column(N_("Owner"), lambda c: c.owner.display_name if c.owner else None, width=18),
    Column(N_("Created"), lambda c: _day(c.created_at), DATE),
)
LOAN_COLUMNS = (
    Column(N_("Customer"), lambda r: r.customer_name, width=18),
    Column(N_("Product"), lambda r: r.loan.product, width=18),
    Column(N_("Amount"), lambda r: r.loan.amount, MONEY, 18),
    Column(N_("Annual rate"), lambda r: r.loan.annual_rate, RATE, 12),
    Column(N_("Term (months)"), lambda r: r.loan.term_months, INTEGER, 12),
    Column(N_("Repayment method"), lambda r: r.loan.method, width=18, shows="label"),
    Column(N_("Disbursement date"), lambda r: r.loan.start_date, DATE),
    Column(N_("Status"), lambda r: r.loan.status, shows="label"),
    Column(N_("Classification"), lambda r: r.loan.classification, shows="label"),
    Column(N_("Outstanding principal"), lambda r: r.outstanding_principal, MONEY, 18),
    Column(N_("Days past due"), lambda r: r.days_past_due, INTEGER, 12),
    Column(N_("Overdue amount"), lambda r: r.overdue_amount, MONEY, 16),
    Column(N_("Next due date"), lambda r: r.next_due_date, DATE),
)


class Sheet:
    """A write-only workbook of one sheet: typed cells (numbers stay numbers, dates dates)."""

    def __init__(self, title: str, columns: Sequence[Column], gettext: Gettext, locale: str) -> None:
        self.columns, self.gettext, self.locale = columns, gettext, locale
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title)
        for index, column in enumerate(columns):
            self.sheet.column_dimensions[_letter(index)].width = column.width
        self.sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for column in columns:
            cell = WriteOnlyCell(self.sheet, value=gettext(column.title))
            cell.font = bold
            header.append(cell)
        self.sheet.append(header)
        self.count = 0

    def _display(self, column: Column, value: Any) -> Any:
        if value is None:
            return None
        if column.shows == "label":
            return self.gettext(VALUE_LABELS[value]) if value in VALUE_LABELS else value
        if column.shows == "region":
            return region_name(value, self.locale) or value
        return value

    def add(self, item: Any) -> None:
        cells = []
        for column in self.columns:
            value = self._display(column, column.value(item))
            cell = text_safe_cell(self.sheet, value)
            if column.number_format and isinstance(value, int | Decimal | date):
                cell.number_format = column.number_format
            cells.append(cell)
        self.sheet.append(cells)
        self.count += 1

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.workbook.save(buffer)
        return buffer.getvalue()


def text_safe_cell(sheet: Any, value: Any) -> WriteOnlyCell:
    """A cell whose text is never read as a formula: a note typed as '=HYPERLINK("http://…")' must
    open in Excel as the text it is, not as a link or a calculation (CSV/formula injection)."""
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


@dataclass(frozen=True)
class Export:
    content: bytes
    count: int


class ExportService:
    """Exports need `export` and whatever reading the list needs (customers.read); the rows are
    the ones the exporter's record scope shows, read through the list services themselves."""

    def __init__(
        self, session: AsyncSession, principal: Principal, cipher: CipherSource | None = None
    ) -> None:
        self.session = session
        self.principal = principal
        self._cipher = cipher

    def check_can_export(self) -> None:
        self.principal.require(EXPORT)

    async def customers(
        self,
        filter: CustomerFilter,
        order: CustomerOrder,
        gettext: Gettext,
        locale: str,
    ) -> Export:
        self.check_can_export()
        service = CustomerService(self.session, self.principal, self._cipher)
        sheet = Sheet(gettext(N_("Customers")), CUSTOMER_COLUMNS, gettext, locale)
        after: str | None = None
        while True:
            page = await service.list_customers(
                filter=filter, order=order, first=PAGE, after=after, with_total=False
            )
            for customer in page.customers:
                sheet.add(customer)
            if not page.has_next_page:
                break
            after = page.end_cursor
        filters = {"search": bool(filter.search), "risk_level": filter.risk_level, "status": filter.status}
        await self._audit("customer", sheet.count, filters)
        return Export(sheet.to_bytes(), sheet.count)

    async def segment(self, segment_id: str, gettext: Gettext, locale: str) -> Export:
        """A saved segment's customers (those in the exporter's scope), with the list's columns."""
        self.check_can_export()
        segments = SegmentService(self.session, self.principal, self._cipher)
        saved = await segments.get(segment_id)
        where = segments.condition(saved.filter)  # refuses a filter the rules no longer take
        sheet = Sheet(gettext(N_("Customers")), CUSTOMER_COLUMNS, gettext, locale)
        after: str | None = None
        while True:
            page = await segments.customers(where, first=PAGE, after=after)
            for customer in page.customers:
                sheet.add(customer)
            if not page.has_next_page:
                break
            after = page.end_cursor
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.EXPORT,
            entity_type="customer",
            entity_id=None,
            changes={"count": sheet.count, "masked": True, "segment": str(saved.id)},
        )
        return Export(sheet.to_bytes(), sheet.count)

    async def loans(self, filter: LoanFilter, as_of: date, gettext: Gettext, locale: str) -> Export:
        self.check_can_export()
        service = LoanService(self.session, self.principal)
        sheet = Sheet(gettext(N_("Loans")), LOAN_COLUMNS, gettext, locale)
        after: str | None = None
        while True:
            page = await service.list_loans(filter, as_of=as_of, first=PAGE, after=after)
            rows: list[LoanRow] = page.rows
            for row in rows:
                sheet.add(row)
            if not page.has_next_page:
                break
            after = page.end_cursor
        filters = {
            "status": filter.status,
            "classification": filter.classification,
            "bucket": filter.bucket,
            "as_of": as_of,
        }
        await self._audit("loan", sheet.count, filters)
        return Export(sheet.to_bytes(), sheet.count)

    async def _audit(self, entity_type: str, count: int, filters: dict[str, Any]) -> None:
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.EXPORT,
            entity_type=entity_type,
            entity_id=None,
            changes={"count": count, "masked": True, "filters": {k: v for k, v in filters.items() if v}},
        )
