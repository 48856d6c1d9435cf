"""ErasureService: erasure requests (PIPL art. 47, GDPR art. 17) from request through review and
execution to a certificate of what was removed, when and by whom.

A request names a customer, the legal basis, who asked and the action (delete, or anonymise:
personal data removed, figures kept). Someone other than the requester reviews it (four eyes);
an approved request is executed by the same statements a retention run uses, refused while the
customer is on legal hold or has a live loan (the contract is a legal basis to keep the data).
The certificate holds counts per kind of record and the names of the staff involved, never a
value of the customer's; the request row outlives the customer (no foreign key).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.models import User
from tenantcrm.auth.permissions import ADMIN_RETENTION, Principal
from tenantcrm.collateral.models import Collateral
from tenantcrm.complaints.models import Complaint
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.customers.inputs import clean_prose, clean_text
from tenantcrm.customers.models import Customer, PiiAccess
from tenantcrm.customers.service import CustomerNotFound, in_customer_scope
from tenantcrm.imports.models import ImportRow
from tenantcrm.loans.models import Loan
from tenantcrm.messages import N_
from tenantcrm.retention.models import ErasureRequest
from tenantcrm.retention.service import ACTIONS, LIVE_LOAN_STATUSES, erase_customers
from tenantcrm.risk.models import EarlyWarning, RiskCase
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

BASES = ("consent_withdrawn", "purpose_fulfilled", "retention_expired", "unlawful", "service_ended", "other")
REQUESTERS = ("data_subject", "representative", "regulator", "internal")
OPEN = ("requested", "approved")
NOTE_MAX = 1000
RECENT = 50
# The records a certificate counts, by the name it shows them under.
LINKED: tuple[tuple[str, Any], ...] = (
    ("loans", Loan.customer_id),
    ("collateral", Collateral.customer_id),
    ("interactions", Interaction.customer_id),
    ("follow_ups", FollowUp.customer_id),
    ("complaints", Complaint.customer_id),
    ("risk_cases", RiskCase.customer_id),
    ("warnings", EarlyWarning.customer_id),
    ("import_rows", ImportRow.customer_id),
)
CHOOSE = N_("Choose one of the listed values.")


class ErasureNotFound(Exception):
    """No such erasure request in this tenant."""


def _refuse(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field, code, message)])


def _choice(data: Mapping[str, Any], name: str, allowed: tuple[str, ...], errors: list[FieldError]) -> str:
    value = clean_text(data.get(name)).lower()
    if value not in allowed:
        errors.append(FieldError(name, "invalid_choice", CHOOSE))
    return value


def _visible(principal: Principal) -> ColumnElement[bool]:
    """A request is seen by whoever may see its customer; once the customer is deleted, its
    certificate (counts, no personal data) by anyone with admin.retention."""
    gone = ~exists().where(Customer.id == ErasureRequest.customer_id)
    return or_(gone, ErasureRequest.customer_id.in_(in_customer_scope(select(Customer.id), principal)))


class ErasureService:
    """Every step needs admin.retention; the customer is found through the record scope."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def _customer(self, customer_id: object) -> Customer:
        parsed = parse_uuid(customer_id)
        customer = None
        if parsed is not None:
            customer = await self.session.scalar(
                in_customer_scope(select(Customer).where(Customer.id == parsed), self.principal)
            )
        if customer is None:
            raise CustomerNotFound
        return customer

    async def request(self, customer_id: object, data: Mapping[str, Any]) -> ErasureRequest:
        self.principal.require(ADMIN_RETENTION)
        if parse_uuid(customer_id) is None:
            raise _refuse("customer_id", "required", N_("Give the customer's id."))
        customer = await self._customer(customer_id)
        errors: list[FieldError] = []
        basis = _choice(data, "basis", BASES, errors)
        requester = _choice(data, "requester", REQUESTERS, errors)
        action = _choice(data, "action", ACTIONS, errors)
        if errors:
            raise InvalidInput(errors)
        if await self.session.scalar(
            select(exists().where(ErasureRequest.customer_id == customer.id, ErasureRequest.status.in_(OPEN)))
        ):
            raise _refuse(
                "customer_id", "duplicate", N_("This customer already has an open erasure request.")
            )
        erasure = ErasureRequest(
            id=uuid.uuid4(),
            customer_id=customer.id,
            customer_ref=str(customer.id)[:8],
            basis=basis,
            requester=requester,
            action=action,
            requested_by=self.principal.user_id,
        )
        self.session.add(erasure)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="erasure_request",
            entity_id=str(erasure.id),
            changes={"customer": str(customer.id), "basis": basis, "requester": requester, "action": action},
        )
        return erasure

    async def get(self, request_id: object, *, for_update: bool = False) -> ErasureRequest:
        self.principal.require(ADMIN_RETENTION)
        parsed = parse_uuid(request_id)
        statement = select(ErasureRequest).where(ErasureRequest.id == parsed, _visible(self.principal))
        found = (
            await self.session.scalar(
                statement.with_for_update(of=ErasureRequest) if for_update else statement
            )
            if parsed
            else None
        )
        if found is None:
            raise ErasureNotFound
        return found

    async def recent(self, limit: int = RECENT) -> list[ErasureRequest]:
        self.principal.require(ADMIN_RETENTION)
        return list(
            await self.session.scalars(
                select(ErasureRequest)
                .where(_visible(self.principal))
                .order_by(ErasureRequest.requested_at.desc(), ErasureRequest.id)
                .limit(limit)
            )
        )

    async def staff_names(self, erasure: ErasureRequest) -> dict[uuid.UUID, str]:
        """E-mail addresses of the staff a request names (requester, reviewer, executor)."""
        self.principal.require(ADMIN_RETENTION)
        ids = {i for i in (erasure.requested_by, erasure.reviewed_by, erasure.executed_by) if i}
        if not ids:
            return {}
        rows = await self.session.execute(select(User.id, User.email).where(User.id.in_(ids)))
        return {key: value for key, value in rows.all()}

    async def review(self, request_id: object, data: Mapping[str, Any]) -> ErasureRequest:
        """`decision` approve or reject (a rejection needs a note); never by the requester."""
        self.principal.require(ADMIN_RETENTION)
        erasure = await self.get(request_id, for_update=True)
        if erasure.status != "requested":
            raise _refuse("decision", "invalid_state", N_("This request has already been reviewed."))
        if erasure.requested_by == self.principal.user_id:
            raise _refuse("decision", "same_person", N_("Someone other than the requester must review it."))
        errors: list[FieldError] = []
        decision = _choice(data, "decision", ("approve", "reject"), errors)
        note = clean_prose(data.get("note"))
        if len(note) > NOTE_MAX or (decision == "reject" and not note):
            errors.append(
                FieldError(
                    "note", "required", N_("Give the reason for a rejection (up to 1,000 characters).")
                )
            )
        if errors:
            raise InvalidInput(errors)
        before = erasure.status
        erasure.status = "approved" if decision == "approve" else "rejected"
        erasure.review_note, erasure.reviewed_by = note, self.principal.user_id
        erasure.reviewed_at = datetime.now(UTC)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.UPDATE,
            entity_type="erasure_request",
            entity_id=str(erasure.id),
            changes={"status": {"from": before, "to": erasure.status}},
        )
        return erasure

    async def execute(self, request_id: object) -> ErasureRequest:
        """Erase the customer of an approved request and keep the certificate."""
        self.principal.require(ADMIN_RETENTION)
        erasure = await self.get(request_id, for_update=True)
        if erasure.status != "approved":
            raise _refuse("request", "invalid_state", N_("Only an approved request can be executed."))
        customer = await self.session.scalar(
            in_customer_scope(
                select(Customer).where(Customer.id == erasure.customer_id), self.principal
            ).with_for_update()
        )
        if customer is None:
            raise _refuse("request", "gone", N_("The customer no longer exists."))
        if customer.legal_hold:
            raise _refuse("request", "legal_hold", N_("The customer is on legal hold."))
        live = await self.session.scalar(
            select(exists().where(Loan.customer_id == customer.id, Loan.status.in_(LIVE_LOAN_STATUSES)))
        )
        if live:
            raise _refuse(
                "request", "live_loan", N_("The customer has a live loan: it cannot be erased while it runs.")
            )
        counted = {name: await self._count(column, customer.id) for name, column in LINKED}
        kept = await self._count(PiiAccess.customer_id, customer.id)
        await erase_customers(self.session, [customer.id], erasure.action)
        now = datetime.now(UTC)
        erasure.status, erasure.executed_by, erasure.executed_at = "executed", self.principal.user_id, now
        erasure.certificate = {
            "request": str(erasure.id),
            "customer_ref": erasure.customer_ref,
            "action": erasure.action,
            "basis": erasure.basis,
            "executed_at": now.isoformat(timespec="seconds"),
            "executed_by": self.principal.email,
            # deleted with the customer, or with their free text cleared when anonymised
            "records": counted,
            "personal_data_cleared": ["name", "national_id", "phone", "email", "address", "blind_indexes"],
            # Audit events stay until the audit_events policy prunes them (ADR 0011); they name the
            # customer by id and record that identifying fields changed, never their values.
            "kept": {"pii_access_log": kept, "audit_events": "redacted_until_retention"},
        }
        await audit.record(
            self.session,
            actor=self.principal,
            action="erase",
            entity_type="erasure_request",
            entity_id=str(erasure.id),
            changes={"action": erasure.action, "records": counted},
        )
        return erasure

    async def _count(self, column: Any, customer_id: uuid.UUID) -> int:
        table = column.class_
        return int(
            await self.session.scalar(select(func.count()).select_from(table).where(column == customer_id))
        )
