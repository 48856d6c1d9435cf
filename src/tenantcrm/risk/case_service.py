"""RiskCaseService: open cases on customers, plan measures with owners and deadlines, close them
with an outcome and lessons learned; the board of cases by status."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.models import User
from tenantcrm.auth.permissions import CUSTOMERS_READ, RISK_MANAGE, Principal
from tenantcrm.auth.service import active_user_id
from tenantcrm.customers.inputs import choice_of, limited_text, parse_date
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService, in_customer_scope
from tenantcrm.loans.models import Loan
from tenantcrm.messages import N_
from tenantcrm.risk.models import EarlyWarning, RiskCase, RiskMeasure
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

TRIGGERS = ("early_warning", "overdue", "complaint", "external", "manual")
STATUSES = ("open", "in_progress", "resolved", "closed")
CLOSED = ("resolved", "closed")
MEASURE_STATUSES = ("planned", "in_progress", "done", "cancelled")
TEXT_MAX = 5000
MEASURE_MAX = 1000
CHOOSE = N_("Choose one of the listed values.")


class RiskCaseNotFound(Exception):
    """No such risk case on a customer this principal may see."""


class MeasureNotFound(Exception):
    """No such measure on a risk case this principal may see."""


@dataclass(slots=True)
class CaseCard:
    """A case on the board: its customer and how many measures are open and overdue."""

    case: RiskCase
    customer_name: str
    open_measures: int
    overdue_measures: int


@dataclass(slots=True)
class Board:
    columns: dict[str, list[CaseCard]] = field(default_factory=lambda: {status: [] for status in STATUSES})


@dataclass(frozen=True, slots=True)
class Person:
    """A user as cases show them: who owns a case or a measure."""

    id: uuid.UUID
    name: str


@dataclass(slots=True)
class CaseDraft:
    """What the form to open a case offers: the customer, its loans, the flag it starts from
    (live and not yet in a case, else None) and who may own it."""

    customer: Customer
    loans: list[Loan]
    warning: EarlyWarning | None
    owners: list[Person]


@dataclass(slots=True)
class CaseFile:
    """A case with everything its page shows; `names` labels every user id it mentions."""

    case: RiskCase
    customer: Customer
    loan: Loan | None
    warning: EarlyWarning | None
    measures: list[RiskMeasure]
    names: dict[uuid.UUID, str]


class RiskCaseService:
    """Working risk cases needs risk.manage; anyone who may see the customer may see its cases."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def _user(self, raw: Any, name: str, errors: list[FieldError]) -> uuid.UUID | None:
        if raw in (None, ""):
            return self.principal.user_id
        found = await active_user_id(self.session, raw)
        if found is None:
            errors.append(FieldError(name, "invalid_choice", CHOOSE))
        return found

    async def open_case(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> RiskCase:
        """Open a case (trigger, problem description, optional loan, owner); opened from an
        early-warning flag, the flag is linked to it."""
        self.principal.require(RISK_MANAGE)
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        errors: list[FieldError] = []
        trigger = choice_of(data.get("trigger") or "manual", "trigger", TRIGGERS, errors)
        description = limited_text(data.get("description"), "description", TEXT_MAX, errors, required=True)
        owner = await self._user(data.get("owner_id"), "owner_id", errors)
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
        warning = None
        if data.get("warning_id") not in (None, ""):
            wanted = parse_uuid(data.get("warning_id"))
            warning = (
                await self.session.scalar(
                    select(EarlyWarning)
                    .where(EarlyWarning.id == wanted, EarlyWarning.customer_id == customer.id)
                    .with_for_update()
                )
                if wanted
                else None
            )
            if warning is None:
                errors.append(FieldError("warning_id", "invalid_choice", CHOOSE))
            elif warning.case_id is not None:
                errors.append(
                    FieldError(
                        "warning_id", "already_in_case", N_("A case is already open for this warning.")
                    )
                )
            trigger = "early_warning"
        if errors:
            raise InvalidInput(errors)
        case = RiskCase(
            id=uuid.uuid4(),
            customer_id=customer.id,
            loan_id=loan_id,
            trigger=trigger,
            warning_id=warning.id if warning else None,
            description=description,
            owner_id=owner,
            opened_by=self.principal.user_id,
        )
        self.session.add(case)
        await self.session.flush()
        if warning is not None:
            warning.case_id = case.id
            await self.session.flush()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="risk_case",
            entity_id=str(case.id),
            changes={
                "customer_id": str(customer.id),
                "trigger": trigger,
                "loan_id": str(loan_id) if loan_id else None,
                "warning_id": str(warning.id) if warning else None,
                "owner_id": str(owner),
            },
        )
        return case

    async def get_case(self, case_id: str | uuid.UUID, *, for_update: bool = False) -> RiskCase:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(case_id)
        statement = in_customer_scope(
            select(RiskCase).join(Customer, Customer.id == RiskCase.customer_id).where(RiskCase.id == parsed),
            self.principal,
        )
        if for_update:
            statement = statement.with_for_update(of=RiskCase)
        found = await self.session.scalar(statement) if parsed else None
        if found is None:
            raise RiskCaseNotFound
        return found

    async def update_case(self, case_id: str | uuid.UUID, data: Mapping[str, Any]) -> RiskCase:
        """Status, owner, outcome and lessons learned; resolving or closing needs an outcome."""
        self.principal.require(RISK_MANAGE)
        case = await self.get_case(case_id, for_update=True)
        errors: list[FieldError] = []
        status = choice_of(data.get("status") or case.status, "status", STATUSES, errors)
        outcome = (
            limited_text(data["outcome"], "outcome", TEXT_MAX, errors) if "outcome" in data else case.outcome
        )
        lessons = (
            limited_text(data["lessons"], "lessons", TEXT_MAX, errors) if "lessons" in data else case.lessons
        )
        owner = (
            await self._user(data.get("owner_id"), "owner_id", errors)
            if data.get("owner_id")
            else case.owner_id
        )
        if status in CLOSED and not outcome:
            errors.append(
                FieldError("outcome", "required", N_("Record the outcome before closing the case."))
            )
        if errors:
            raise InvalidInput(errors)
        before = {
            "status": case.status,
            "owner_id": case.owner_id,
            "outcome": case.outcome,
            "lessons": case.lessons,
        }
        case.status, case.outcome, case.lessons, case.owner_id = status, outcome, lessons, owner
        case.closed_at = (case.closed_at or datetime.now(UTC)) if status in CLOSED else None
        after = {"status": status, "owner_id": owner, "outcome": outcome, "lessons": lessons}
        # Free text may name people; the append-only chain keeps only that it changed.
        if changes := audit.diff(before, after, redact=("outcome", "lessons")):
            case.updated_at = datetime.now(UTC)
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="risk_case",
                entity_id=str(case.id),
                changes=changes,
            )
        return case

    async def add_measure(self, case_id: str | uuid.UUID, data: Mapping[str, Any]) -> RiskMeasure:
        """A measure with an owner and a deadline on an open case."""
        self.principal.require(RISK_MANAGE)
        case = await self.get_case(case_id, for_update=True)
        errors: list[FieldError] = []
        if case.status in CLOSED:
            errors.append(FieldError("case", "closed", N_("This case is closed.")))
        description = limited_text(data.get("description"), "description", MEASURE_MAX, errors, required=True)
        owner = await self._user(data.get("owner_id"), "owner_id", errors)
        due_on = None
        try:
            due_on = parse_date(data.get("due_on"))
            if not date.today() - timedelta(days=365) <= due_on <= date.today() + timedelta(days=3660):
                raise ValueError("out of range")
        except (ValueError, TypeError):
            errors.append(FieldError("due_on", "invalid_date", N_("Enter a date as YYYY-MM-DD.")))
        if errors:
            raise InvalidInput(errors)
        measure = RiskMeasure(
            id=uuid.uuid4(),
            case_id=case.id,
            description=description,
            owner_id=owner,
            due_on=due_on,
            created_by=self.principal.user_id,
        )
        self.session.add(measure)
        if case.status == "open":
            case.status = "in_progress"
        case.updated_at = datetime.now(UTC)
        await self.session.flush()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="risk_measure",
            entity_id=str(measure.id),
            changes={"case_id": str(case.id), "owner_id": str(owner), "due_on": due_on.isoformat()},
        )
        return measure

    async def update_measure(self, measure_id: str | uuid.UUID, status: Any) -> RiskMeasure:
        self.principal.require(RISK_MANAGE)
        parsed = parse_uuid(measure_id)
        measure = (
            await self.session.scalar(
                in_customer_scope(
                    select(RiskMeasure)
                    .join(RiskCase, RiskCase.id == RiskMeasure.case_id)
                    .join(Customer, Customer.id == RiskCase.customer_id)
                    .where(RiskMeasure.id == parsed)
                    .with_for_update(of=RiskMeasure),
                    self.principal,
                )
            )
            if parsed
            else None
        )
        if measure is None:
            raise MeasureNotFound
        errors: list[FieldError] = []
        new_status = choice_of(status, "status", MEASURE_STATUSES, errors)
        if errors:
            raise InvalidInput(errors)
        if new_status != measure.status:
            previous = measure.status
            measure.status = new_status
            measure.done_at = datetime.now(UTC) if new_status == "done" else None
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="risk_measure",
                entity_id=str(measure.id),
                changes={"status": {"from": previous, "to": new_status}},
            )
        return measure

    async def measures(self, case_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[RiskMeasure]]:
        """Measures of many cases (in scope), by deadline."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(RiskMeasure)
                .join(RiskCase, RiskCase.id == RiskMeasure.case_id)
                .join(Customer, Customer.id == RiskCase.customer_id)
                .where(RiskMeasure.case_id.in_(case_ids)),
                self.principal,
            ).order_by(RiskMeasure.due_on, RiskMeasure.created_at)
        )
        found: dict[uuid.UUID, list[RiskMeasure]] = {case_id: [] for case_id in case_ids}
        for measure in rows:
            found[measure.case_id].append(measure)
        return found

    async def cases_for_customers(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[RiskCase]]:
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(RiskCase)
                .join(Customer, Customer.id == RiskCase.customer_id)
                .where(RiskCase.customer_id.in_(customer_ids)),
                self.principal,
            ).order_by(RiskCase.opened_at.desc())
        )
        found: dict[uuid.UUID, list[RiskCase]] = {customer_id: [] for customer_id in customer_ids}
        for case in rows:
            found[case.customer_id].append(case)
        return found

    async def board(self, *, include_closed_days: int = 30) -> Board:
        """Cases in scope by status; closed ones only from the last month. Open and overdue
        measures counted per case in the same query."""
        self.principal.require(CUSTOMERS_READ)
        today = date.today()
        live = RiskMeasure.status.in_(("planned", "in_progress"))
        open_measures = (
            select(func.count())
            .where(RiskMeasure.case_id == RiskCase.id, live)
            .correlate(RiskCase)
            .scalar_subquery()
        )
        overdue_measures = (
            select(func.count())
            .where(RiskMeasure.case_id == RiskCase.id, live, RiskMeasure.due_on < today)
            .correlate(RiskCase)
            .scalar_subquery()
        )
        since = datetime.now(UTC) - timedelta(days=include_closed_days)
        rows = await self.session.execute(
            in_customer_scope(
                select(RiskCase, Customer.name, open_measures, overdue_measures)
                .join(Customer, Customer.id == RiskCase.customer_id)
                .where((RiskCase.closed_at.is_(None)) | (RiskCase.closed_at >= since)),
                self.principal,
            ).order_by(RiskCase.opened_at.desc())
        )
        board = Board()
        for case, name, open_count, overdue_count in rows.all():
            board.columns[case.status].append(CaseCard(case, name, open_count, overdue_count))
        return board

    async def owners(self) -> list[Person]:
        """Active users, by name: who may be made owner of a case or a measure."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.execute(
            select(User.id, User.display_name)
            .where(User.status == "active")
            .order_by(User.display_name, User.id)
        )
        return [Person(user_id, name) for user_id, name in rows.all()]

    async def names(self, user_ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        """Display names of the given users, disabled ones included (they may still own old cases)."""
        self.principal.require(CUSTOMERS_READ)
        wanted = {user_id for user_id in user_ids if user_id is not None}
        if not wanted:
            return {}
        rows = await self.session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
        return dict(rows.all())

    async def _loans_of(self, customer_id: uuid.UUID) -> list[Loan]:
        return list(
            await self.session.scalars(
                in_customer_scope(
                    select(Loan)
                    .join(Customer, Customer.id == Loan.customer_id)
                    .where(Loan.customer_id == customer_id),
                    self.principal,
                ).order_by(Loan.start_date.desc(), Loan.id)
            )
        )

    async def draft(
        self, customer_id: str | uuid.UUID, warning_id: str | uuid.UUID | None = None
    ) -> CaseDraft:
        """The form to open a case on a customer in scope, from one of its live flags when given;
        a flag that is not the customer's, cleared or already in a case is left out."""
        self.principal.require(RISK_MANAGE)
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        wanted = parse_uuid(warning_id) if warning_id else None
        warning = (
            await self.session.scalar(
                select(EarlyWarning).where(
                    EarlyWarning.id == wanted,
                    EarlyWarning.customer_id == customer.id,
                    EarlyWarning.cleared_at.is_(None),
                    EarlyWarning.case_id.is_(None),
                )
            )
            if wanted
            else None
        )
        return CaseDraft(customer, await self._loans_of(customer.id), warning, await self.owners())

    async def case_file(self, case_id: str | uuid.UUID) -> CaseFile:
        """The case, its customer, loan, originating flag and measures (by deadline)."""
        case = await self.get_case(case_id)
        customer = await CustomerService(self.session, self.principal).get_customer(case.customer_id)
        loan = await self.session.get(Loan, case.loan_id) if case.loan_id else None
        warning = await self.session.get(EarlyWarning, case.warning_id) if case.warning_id else None
        measures = (await self.measures([case.id]))[case.id]
        people = [case.owner_id, case.opened_by, *(m.owner_id for m in measures)]
        return CaseFile(case, customer, loan, warning, measures, await self.names(people))

    async def get_measure(self, measure_id: str | uuid.UUID) -> RiskMeasure:
        """A measure on a case in scope."""
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(measure_id)
        found = (
            await self.session.scalar(
                in_customer_scope(
                    select(RiskMeasure)
                    .join(RiskCase, RiskCase.id == RiskMeasure.case_id)
                    .join(Customer, Customer.id == RiskCase.customer_id)
                    .where(RiskMeasure.id == parsed),
                    self.principal,
                )
            )
            if parsed
            else None
        )
        if found is None:
            raise MeasureNotFound
        return found
