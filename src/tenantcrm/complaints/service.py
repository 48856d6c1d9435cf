"""ComplaintService: record complaints and feedback, work them to resolution, flag late ones."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, CUSTOMERS_WRITE, Principal
from tenantcrm.auth.service import active_user_id
from tenantcrm.complaints.models import Complaint
from tenantcrm.customers.inputs import choice_of, limited_text
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import (
    CursorEnds,
    CustomerService,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
    in_customer_scope,
)
from tenantcrm.loans.models import Loan
from tenantcrm.messages import N_
from tenantcrm.preferences.service import load_preferences
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

KINDS = ("complaint", "feedback")
CATEGORIES = ("service", "fees", "interest_rate", "collection", "product", "privacy", "other")
STATUSES = ("open", "in_progress", "resolved")
CONTENT_MAX = 5000
CHOOSE = N_("Choose one of the listed values.")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
COMPLAINT_SORTS = ("respond_by", "received_at")


class ComplaintNotFound(Exception):
    """No such complaint on a customer this principal may see."""


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    complaint: Complaint
    customer_name: str
    overdue: bool


@dataclass(frozen=True, slots=True)
class ComplaintOrder:
    """respond_by: the most urgent first (unresolved before resolved, then by response target);
    received_at: the oldest first. `descending` turns either round. t0012 indexes both orders."""

    field: str = "respond_by"
    descending: bool = False

    def __post_init__(self) -> None:
        if self.field not in COMPLAINT_SORTS:
            raise ValueError(f"unknown complaint order {self.field}")

    def keys(self, entity: Any) -> tuple[Any, ...]:
        if self.field == "respond_by":
            return (entity.status == "resolved", entity.respond_by, entity.id)
        return (entity.received_at, entity.id)


@dataclass(slots=True)
class ComplaintPage(CursorEnds):
    rows: list[ComplaintRow]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


class ComplaintService:
    """Recording and working complaints is customer work (customers.write in scope); reading
    needs customers.read. The response target comes from the tenant's preferences."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def record(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Complaint:
        self.principal.require(CUSTOMERS_WRITE)
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        errors: list[FieldError] = []
        kind = choice_of(data.get("kind") or "complaint", "kind", KINDS, errors)
        category = choice_of(data.get("category"), "category", CATEGORIES, errors)
        content = limited_text(data.get("content"), "content", CONTENT_MAX, errors, required=True)
        loan_id = None
        if data.get("loan_id") not in (None, ""):
            wanted = parse_uuid(data.get("loan_id"))
            loan_id = (
                await self.session.scalar(
                    select(Loan.id).where(Loan.id == wanted, Loan.customer_id == customer.id)
                )
                if wanted
                else None
            )
            if loan_id is None:
                errors.append(FieldError("loan_id", "invalid_choice", CHOOSE))
        assignee = await self._assignee(data.get("assignee_id"), errors)
        if errors:
            raise InvalidInput(errors)
        now = datetime.now(UTC)
        hours = (await load_preferences(self.session)).complaint_response_hours
        complaint = Complaint(
            id=uuid.uuid4(),
            customer_id=customer.id,
            loan_id=loan_id,
            kind=kind,
            category=category,
            content=content,
            received_at=now,
            respond_by=now + timedelta(hours=hours),
            assignee_id=assignee,
            created_by=self.principal.user_id,
        )
        self.session.add(complaint)
        await self.session.flush()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="complaint",
            entity_id=str(complaint.id),
            changes={
                "customer_id": str(customer.id),
                "kind": kind,
                "category": category,
                "loan_id": str(loan_id) if loan_id else None,
                "respond_by": complaint.respond_by.isoformat(),
            },
        )
        return complaint

    async def _assignee(self, raw: Any, errors: list[FieldError]) -> uuid.UUID | None:
        if raw in (None, ""):
            return self.principal.user_id
        found = await active_user_id(self.session, raw)
        if found is None:
            errors.append(FieldError("assignee_id", "invalid_choice", CHOOSE))
        return found

    async def get(self, complaint_id: str | uuid.UUID, *, for_update: bool = False) -> Complaint:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(complaint_id)
        statement = in_customer_scope(
            select(Complaint)
            .join(Customer, Customer.id == Complaint.customer_id)
            .where(Complaint.id == parsed),
            self.principal,
        )
        if for_update:
            statement = statement.with_for_update(of=Complaint)
        found = await self.session.scalar(statement) if parsed else None
        if found is None:
            raise ComplaintNotFound
        return found

    async def update(self, complaint_id: str | uuid.UUID, data: Mapping[str, Any]) -> Complaint:
        """Move a complaint along (open → in progress → resolved); resolving needs a resolution."""
        self.principal.require(CUSTOMERS_WRITE)
        complaint = await self.get(complaint_id, for_update=True)
        errors: list[FieldError] = []
        status = choice_of(data.get("status") or complaint.status, "status", STATUSES, errors)
        resolution = (
            limited_text(data.get("resolution"), "resolution", CONTENT_MAX, errors, required=False)
            if "resolution" in data
            else complaint.resolution
        )
        if status == "resolved" and not resolution:
            errors.append(FieldError("resolution", "required", N_("Describe how it was resolved.")))
        assignee = (
            await self._assignee(data.get("assignee_id"), errors)
            if data.get("assignee_id") not in (None, "")
            else complaint.assignee_id
        )
        if errors:
            raise InvalidInput(errors)
        before = {
            "status": complaint.status,
            "assignee_id": complaint.assignee_id,
            "resolved": bool(complaint.resolution),
        }
        complaint.status, complaint.resolution, complaint.assignee_id = status, resolution, assignee
        complaint.resolved_at = (complaint.resolved_at or datetime.now(UTC)) if status == "resolved" else None
        after = {"status": status, "assignee_id": assignee, "resolved": bool(resolution)}
        if changes := audit.diff(before, after):
            complaint.updated_at = datetime.now(UTC)
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="complaint",
                entity_id=str(complaint.id),
                changes=changes,
            )
        return complaint

    async def list_complaints(
        self,
        *,
        status: str | None = None,
        overdue_only: bool = False,
        customer_ids: Sequence[uuid.UUID] | None = None,
        limit: int = PAGE_SIZE,
        after: str | None = None,
    ) -> list[ComplaintRow]:
        """Complaints in scope, the most urgent (earliest response target) first; `after` is the
        cursor (complaint_cursor) of the last row of the previous page."""
        page = await self.page_complaints(
            status=status, overdue_only=overdue_only, customer_ids=customer_ids, first=limit, after=after
        )
        return page.rows

    async def page_complaints(
        self,
        *,
        status: str | None = None,
        overdue_only: bool = False,
        customer_ids: Sequence[uuid.UUID] | None = None,
        order: ComplaintOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> ComplaintPage:
        """One keyset page of complaints in scope (forward with first/after, back with last/before),
        in `order`; a cursor this order did not issue is refused (InvalidInput on "after")."""
        self.principal.require(CUSTOMERS_READ)
        order = order or ComplaintOrder()
        now = datetime.now(UTC)
        backwards = last is not None or before is not None
        size = min(max(int((last if backwards else first) or PAGE_SIZE), 1), MAX_PAGE_SIZE)
        # Walking backwards reads the reverse order, then flips the page.
        descending = order.descending != backwards
        statement = in_customer_scope(
            select(Complaint, Customer.name).join(Customer, Customer.id == Complaint.customer_id),
            self.principal,
        )
        cursor = before if backwards else after
        if cursor is not None:
            try:
                anchor_id = decode_cursor(cursor, order)
            except InvalidCursor:
                raise InvalidInput([FieldError("after", "invalid_cursor", CHOOSE)]) from None
            anchor = aliased(Complaint)
            boundary = tuple_(
                *(select(key).where(anchor.id == anchor_id).scalar_subquery() for key in order.keys(anchor))
            )
            position = tuple_(*order.keys(Complaint))
            statement = statement.where(position < boundary if descending else position > boundary)
        if status:
            statement = statement.where(Complaint.status == status)
        if overdue_only:
            statement = statement.where(Complaint.status != "resolved", Complaint.respond_by < now)
        if customer_ids is not None:
            statement = statement.where(Complaint.customer_id.in_(customer_ids))
        keys = [key.desc() if descending else key.asc() for key in order.keys(Complaint)]
        found = (await self.session.execute(statement.order_by(*keys).limit(size + 1))).all()
        more = len(found) > size
        rows = [ComplaintRow(complaint, name, complaint.overdue(now)) for complaint, name in found[:size]]
        if backwards:
            rows.reverse()
        return ComplaintPage(
            rows=rows,
            cursors=[encode_cursor(row.complaint, order) for row in rows],
            has_next_page=more if not backwards else cursor is not None,
            has_previous_page=more if backwards else cursor is not None,
        )

    async def complaints_for_customers(
        self, customer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Complaint]]:
        """The complaints of many customers in scope in one query (GraphQL batches), newest first."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(Complaint)
                .join(Customer, Customer.id == Complaint.customer_id)
                .where(Complaint.customer_id.in_(customer_ids)),
                self.principal,
            ).order_by(Complaint.received_at.desc(), Complaint.id)
        )
        found: dict[uuid.UUID, list[Complaint]] = {customer_id: [] for customer_id in customer_ids}
        for complaint in rows:
            found[complaint.customer_id].append(complaint)
        return found


def complaint_cursor(complaint: Complaint, order: ComplaintOrder | None = None) -> str:
    """Where a complaint stands in page_complaints' order: the order's name and the complaint's id,
    its sort values are read again (the customers' cursor), so no customer data is in it."""
    return encode_cursor(complaint, order or ComplaintOrder())
