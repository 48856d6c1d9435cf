"""AccessExportService: everything the institution holds on one customer, for an access request
(PIPL art. 45, GDPR art. 15), as JSON and as an .xlsx workbook with one sheet per kind of record.

The export decrypts the customer's personal data, so it goes through CustomerService.reveal_pii:
it needs pii.reveal besides admin.retention, a stated purpose, and leaves one PII access log row
per field and a `reveal` audit event; the export itself is audited with its counts per section.
Ciphertexts and blind indexes are left out (they mean nothing to the customer).
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openpyxl import Workbook
from sqlalchemy import LargeBinary, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import ADMIN_RETENTION, PII_REVEAL, Principal
from tenantcrm.collateral.models import Appraisal, Collateral
from tenantcrm.complaints.models import Complaint
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.customers.inputs import PII_FIELDS
from tenantcrm.customers.models import Customer, PiiAccess
from tenantcrm.customers.service import CipherSource, CustomerService
from tenantcrm.exports.service import text_safe_cell
from tenantcrm.imports.models import ImportRow
from tenantcrm.loans.models import AllocationRow, Classification, InstallmentRow, Loan, Repayment
from tenantcrm.messages import N_
from tenantcrm.risk.models import EarlyWarning, RiskCase, RiskMeasure
from tenantcrm.validation import FieldError, InvalidInput

FORMATS = ("json", "xlsx")
HIDDEN = {"pii_key_version", "national_id_masked", "phone_masked", "email_masked", "address_masked"}


@dataclass(frozen=True, slots=True)
class AccessExport:
    customer_id: uuid.UUID
    sections: dict[str, list[dict[str, Any]]]

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.sections.items()}

    def to_json(self) -> bytes:
        return json.dumps(self.sections, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")

    def to_xlsx(self) -> bytes:
        workbook = Workbook(write_only=True)
        for name, rows in self.sections.items():
            sheet = workbook.create_sheet(name[:31])
            columns = list(rows[0]) if rows else ["—"]
            sheet.append(columns)
            for row in rows:
                sheet.append([text_safe_cell(sheet, _cell(row.get(column))) for column in columns])
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def _readable(table: Table) -> list[Any]:
    return [c for c in table.columns if not isinstance(c.type, LargeBinary) and c.name not in HIDDEN]


class AccessExportService:
    def __init__(self, session: AsyncSession, principal: Principal, cipher: CipherSource) -> None:
        self.session = session
        self.principal = principal
        self.cipher = cipher

    def check_can_export(self) -> None:
        """Refuse before the form is even shown to someone who could not export."""
        self.principal.require(ADMIN_RETENTION)
        self.principal.require(PII_REVEAL)

    async def _rows(self, model: Any, *where: Any) -> list[dict[str, Any]]:
        table = model.__table__
        columns = _readable(table)
        order = [c for c in (*table.primary_key.columns,)]
        result = await self.session.execute(select(*columns).where(*where).order_by(*order))
        return [audit.to_jsonable(dict(row._mapping)) for row in result]

    async def export(
        self, customer_id: object, *, purpose: str, output: str, channel: str = "web"
    ) -> AccessExport:
        """Everything on the customer; `output` (json or xlsx) is recorded in the audit event."""
        self.check_can_export()
        if output not in FORMATS:
            raise InvalidInput(
                [FieldError("format", "invalid_choice", N_("Choose one of the listed values."))]
            )
        customers = CustomerService(self.session, self.principal, self.cipher)
        customer = await customers.get_customer(customer_id)
        revealed = await customers.reveal_pii(customer.id, list(PII_FIELDS), purpose=purpose, channel=channel)
        profile = (await self._rows(Customer, Customer.id == customer.id))[0] | revealed
        loans = select(Loan.id).where(Loan.customer_id == customer.id)
        collateral = select(Collateral.id).where(Collateral.customer_id == customer.id)
        cases = select(RiskCase.id).where(RiskCase.customer_id == customer.id)
        sections = {
            "customer": [profile],
            "loans": await self._rows(Loan, Loan.customer_id == customer.id),
            "installments": await self._rows(InstallmentRow, InstallmentRow.loan_id.in_(loans)),
            "repayments": await self._rows(Repayment, Repayment.loan_id.in_(loans)),
            "allocations": await self._rows(AllocationRow, AllocationRow.loan_id.in_(loans)),
            "classifications": await self._rows(Classification, Classification.loan_id.in_(loans)),
            "collateral": await self._rows(Collateral, Collateral.customer_id == customer.id),
            "appraisals": await self._rows(Appraisal, Appraisal.collateral_id.in_(collateral)),
            "interactions": await self._rows(Interaction, Interaction.customer_id == customer.id),
            "follow_ups": await self._rows(FollowUp, FollowUp.customer_id == customer.id),
            "complaints": await self._rows(Complaint, Complaint.customer_id == customer.id),
            "risk_cases": await self._rows(RiskCase, RiskCase.customer_id == customer.id),
            "risk_measures": await self._rows(RiskMeasure, RiskMeasure.case_id.in_(cases)),
            "warnings": await self._rows(EarlyWarning, EarlyWarning.customer_id == customer.id),
            "import_rows": await self._rows(ImportRow, ImportRow.customer_id == customer.id),
            "pii_access_log": await self._rows(PiiAccess, PiiAccess.customer_id == customer.id),
        }
        export = AccessExport(customer.id, sections)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.EXPORT,
            entity_type="customer",
            entity_id=str(customer.id),
            changes={
                "access_request": True,
                "format": output,
                "sections": export.counts(),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        return export
