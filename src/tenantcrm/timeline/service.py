"""TimelineService: a customer's history from every source, newest first, a page at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit.models import AuditEvent
from tenantcrm.auth.permissions import Principal
from tenantcrm.complaints.models import Complaint
from tenantcrm.contacts.models import Interaction
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.models import Classification, Loan, Repayment
from tenantcrm.risk.models import RiskCase, RiskMeasure

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened. `kind` names it (interaction, loan_created, repayment,
    repayment_reversed, classification, complaint, risk_case_opened, risk_measure,
    risk_case_closed, customer_changed); `data` holds what a page shows, never PII."""

    at: datetime
    kind: str
    ref_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TimelinePage:
    entries: list[TimelineEntry]
    has_more: bool

    @property
    def next_before(self) -> str | None:
        """The cursor of the next page: the last entry's time (ISO), with its id."""
        if not self.has_more or not self.entries:
            return None
        last = self.entries[-1]
        return f"{last.at.isoformat()}|{last.ref_id}"


def parse_before(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    at, _, ref = cursor.partition("|")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    # Only cursors this service could have made: zoned, and in years PostgreSQL takes either way.
    if moment.tzinfo is None or not 1900 <= moment.year <= 2200:
        return None
    return moment, ref[:64]


class TimelineService:
    """Whoever may see the customer sees its timeline; field changes come from the audit log
    as field names only (values of personal data are redacted there anyway)."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def page(
        self, customer_id: str | uuid.UUID, *, before: str | None = None, first: int = PAGE_SIZE
    ) -> TimelinePage:
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        size = min(max(first, 1), MAX_PAGE_SIZE)
        cursor = parse_before(before)
        until = cursor[0] if cursor else None
        entries: list[TimelineEntry] = []

        async def newest(statement: Any, at: Any) -> list[Any]:
            if until is not None:
                statement = statement.where(at <= until)
            return list((await self.session.execute(statement.order_by(at.desc()).limit(size + 1))).all())

        cid = customer.id
        for (row,) in await newest(select(Interaction).where(Interaction.customer_id == cid), Interaction.at):
            entries.append(
                TimelineEntry(
                    row.at,
                    "interaction",
                    str(row.id),
                    {"channel": row.channel, "summary": row.summary, "next_step": row.next_step},
                )
            )
        for (row,) in await newest(select(Loan).where(Loan.customer_id == cid), Loan.created_at):
            entries.append(
                TimelineEntry(
                    row.created_at,
                    "loan_created",
                    str(row.id),
                    {
                        "loan_id": str(row.id),
                        "product": row.product,
                        "amount": row.amount,
                        "method": row.method,
                    },
                )
            )
        repayments = (
            select(Repayment, Loan.product)
            .join(Loan, Loan.id == Repayment.loan_id)
            .where(Loan.customer_id == cid)
        )
        for row, product in await newest(repayments, Repayment.recorded_at):
            entries.append(
                TimelineEntry(
                    row.recorded_at,
                    "repayment",
                    str(row.id),
                    {
                        "loan_id": str(row.loan_id),
                        "product": product,
                        "amount": row.amount,
                        "paid_on": row.paid_on,
                        "channel": row.channel,
                    },
                )
            )
        reversed_ = repayments.where(Repayment.reversed_at.is_not(None))
        for row, product in await newest(reversed_, Repayment.reversed_at):
            entries.append(
                TimelineEntry(
                    row.reversed_at,
                    "repayment_reversed",
                    f"{row.id}:r",
                    {
                        "loan_id": str(row.loan_id),
                        "product": product,
                        "amount": row.amount,
                        "reason": row.reversal_reason,
                    },
                )
            )
        decisions = (
            select(Classification, Loan.product)
            .join(Loan, Loan.id == Classification.loan_id)
            .where(Loan.customer_id == cid)
        )
        for row, product in await newest(decisions, Classification.decided_at):
            entries.append(
                TimelineEntry(
                    row.decided_at,
                    "classification",
                    str(row.id),
                    {
                        "loan_id": str(row.loan_id),
                        "product": product,
                        "from": row.previous,
                        "to": row.classification,
                        "reason": row.reason,
                    },
                )
            )
        for (row,) in await newest(
            select(Complaint).where(Complaint.customer_id == cid), Complaint.received_at
        ):
            entries.append(
                TimelineEntry(
                    row.received_at,
                    "complaint",
                    str(row.id),
                    {
                        "kind": row.kind,
                        "category": row.category,
                        "status": row.status,
                        "content": row.content,
                    },
                )
            )
        for (row,) in await newest(select(RiskCase).where(RiskCase.customer_id == cid), RiskCase.opened_at):
            entries.append(
                TimelineEntry(
                    row.opened_at,
                    "risk_case_opened",
                    str(row.id),
                    {"case_id": str(row.id), "trigger": row.trigger, "description": row.description},
                )
            )
        closed = select(RiskCase).where(RiskCase.customer_id == cid, RiskCase.closed_at.is_not(None))
        for (row,) in await newest(closed, RiskCase.closed_at):
            entries.append(
                TimelineEntry(
                    row.closed_at,
                    "risk_case_closed",
                    f"{row.id}:c",
                    {"case_id": str(row.id), "status": row.status, "outcome": row.outcome},
                )
            )
        measures = (
            select(RiskMeasure)
            .join(RiskCase, RiskCase.id == RiskMeasure.case_id)
            .where(RiskCase.customer_id == cid)
        )
        for (row,) in await newest(measures, RiskMeasure.created_at):
            entries.append(
                TimelineEntry(
                    row.created_at,
                    "risk_measure",
                    str(row.id),
                    {
                        "case_id": str(row.case_id),
                        "description": row.description,
                        "due_on": row.due_on,
                        "status": row.status,
                    },
                )
            )
        changes = select(AuditEvent).where(
            AuditEvent.entity_type == "customer",
            AuditEvent.entity_id == str(cid),
            AuditEvent.action == "update",
        )
        for (row,) in await newest(changes, AuditEvent.at):
            entries.append(
                TimelineEntry(row.at, "customer_changed", f"audit:{row.seq}", {"fields": sorted(row.changes)})
            )
        if cursor is not None:
            at, ref = cursor
            entries = [e for e in entries if (e.at, e.ref_id) < (at, ref)]
        entries.sort(key=lambda e: (e.at, e.ref_id), reverse=True)
        return TimelinePage(entries[:size], has_more=len(entries) > size)
