"""Early warning: per-tenant rules evaluated over the whole book, raising and clearing flags on
customers with the reason as data; flagged customers listed for risk officers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, RISK_MANAGE, Principal
from tenantcrm.customers.inputs import clean_text
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import in_customer_scope
from tenantcrm.loans.ledger import CLASSES
from tenantcrm.loans.models import Classification, Loan
from tenantcrm.loans.service import days_past_due_sql
from tenantcrm.messages import N_
from tenantcrm.risk.models import EarlyWarning, WarningRule
from tenantcrm.validation import FieldError, InvalidInput

KINDS = ("days_past_due", "classification_worsened", "debt_to_income", "no_contact_with_overdue")
# kind: (lowest, highest, whole number) of its threshold; None: the rule takes no threshold.
THRESHOLDS: dict[str, tuple[Decimal, Decimal, bool] | None] = {
    "days_past_due": (Decimal(1), Decimal(3650), True),
    "classification_worsened": None,
    "debt_to_income": (Decimal("0.01"), Decimal(100), False),
    "no_contact_with_overdue": (Decimal(1), Decimal(3650), True),
}
SYSTEM_ACTOR = "system:early-warning"


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    raised: int
    cleared: int
    live: int


@dataclass(frozen=True, slots=True)
class FlaggedRow:
    warning: EarlyWarning
    customer_name: str


def _class_rank(column: Any) -> Any:
    return case({name: index for index, name in enumerate(CLASSES)}, value=column, else_=0)


async def _matches(session: AsyncSession, rule: WarningRule, as_of: date) -> dict[uuid.UUID, dict[str, Any]]:
    """Customers the rule flags as of the date, with the reason as JSON-able data."""
    live_loans = Loan.status.in_(("active", "written_off"))
    dpd = days_past_due_sql(as_of)
    if rule.kind == "days_past_due":
        worst = func.max(dpd)
        rows = await session.execute(
            select(Loan.customer_id, worst)
            .where(live_loans)
            .group_by(Loan.customer_id)
            .having(worst > rule.threshold)
        )
        return {customer_id: {"days_past_due": int(days)} for customer_id, days in rows.all()}
    if rule.kind == "classification_worsened":
        latest = (
            select(
                Classification.loan_id,
                Classification.classification,
                Classification.previous,
                func.row_number()
                .over(partition_by=Classification.loan_id, order_by=Classification.id.desc())
                .label("rank"),
            )
        ).subquery()
        rows = await session.execute(
            select(Loan.customer_id, latest.c.previous, latest.c.classification)
            .join(latest, latest.c.loan_id == Loan.id)
            .where(
                latest.c.rank == 1,
                live_loans,
                _class_rank(latest.c.classification)
                > _class_rank(func.coalesce(latest.c.previous, "normal")),
            )
            .order_by(Loan.customer_id, _class_rank(latest.c.classification).desc())
        )
        found: dict[uuid.UUID, dict[str, Any]] = {}
        for customer_id, previous, current in rows.all():
            found.setdefault(customer_id, {"from": previous or "normal", "to": current})
        return found
    if rule.kind == "debt_to_income":
        ratio = Customer.liabilities / (Customer.monthly_income * 12)
        rows = await session.execute(
            select(Customer.id, ratio).where(Customer.monthly_income > 0, ratio > rule.threshold)
        )
        return {
            customer_id: {"ratio": str(value.quantize(Decimal("0.0001")))}
            for customer_id, value in rows.all()
        }
    # no_contact_with_overdue
    cutoff = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) - timedelta(
        days=int(rule.threshold or 0)
    )
    last = func.coalesce(Customer.last_contact_at, Customer.created_at)
    worst = func.max(dpd)
    rows = await session.execute(
        select(Customer.id, worst, func.min(last))
        .join(Loan, Loan.customer_id == Customer.id)
        .where(live_loans, last < cutoff)
        .group_by(Customer.id)
        .having(worst > 0)
    )
    return {
        customer_id: {
            "days_past_due": int(days),
            "days_since_contact": (as_of - contacted.astimezone(UTC).date()).days,
        }
        for customer_id, days, contacted in rows.all()
    }


async def evaluate(
    session: AsyncSession, *, as_of: date | None = None, actor: Principal | None = None
) -> EvaluationResult:
    """Run every rule over the whole tenant: raise flags for new matches, clear flags that no
    longer match (or whose rule was switched off), refresh the reasons of the rest. Audited
    with counts; one evaluation at a time per tenant."""
    today = as_of or date.today()
    await session.execute(text("LOCK TABLE warnings IN SHARE ROW EXCLUSIVE MODE"))
    rules = list(await session.scalars(select(WarningRule).order_by(WarningRule.id)))
    wanted: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    for rule in rules:
        if rule.enabled:
            for customer_id, details in (await _matches(session, rule, today)).items():
                wanted[(customer_id, rule.kind)] = details
    live = {
        (w.customer_id, w.kind): w
        for w in await session.scalars(select(EarlyWarning).where(EarlyWarning.cleared_at.is_(None)))
    }
    now = datetime.now(UTC)
    raised = [key for key in wanted if key not in live]
    cleared = [warning.id for key, warning in live.items() if key not in wanted]
    for key, warning in live.items():
        if key in wanted and warning.details != wanted[key]:
            warning.details = wanted[key]
    session.add_all(
        EarlyWarning(id=uuid.uuid4(), customer_id=customer_id, kind=kind, details=wanted[(customer_id, kind)])
        for customer_id, kind in raised
    )
    if cleared:
        await session.execute(update(EarlyWarning).where(EarlyWarning.id.in_(cleared)).values(cleared_at=now))
    await session.flush()
    result = EvaluationResult(raised=len(raised), cleared=len(cleared), live=len(wanted))
    await audit.record(
        session,
        actor=actor,
        actor_label=None if actor else SYSTEM_ACTOR,
        action=audit.UPDATE,
        entity_type="early_warning",
        entity_id=None,
        changes={
            "as_of": today.isoformat(),
            "raised": result.raised,
            "cleared": result.cleared,
            "live": result.live,
        },
    )
    return result


def validate_rules(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Decimal | None, bool]]:
    """{kind: (threshold, enabled)} for the given rows; unknown kinds and bad thresholds refused."""
    errors: list[FieldError] = []
    clean: dict[str, tuple[Decimal | None, bool]] = {}
    for row in rows:
        kind = clean_text(row.get("kind")).lower()
        if kind not in KINDS:
            errors.append(FieldError("kind", "invalid_choice", N_("Choose one of the listed values.")))
            continue
        enabled = row.get("enabled") is True or clean_text(row.get("enabled")).lower() in ("1", "true", "on")
        limits = THRESHOLDS[kind]
        threshold = None
        if limits is not None:
            low, high, whole = limits
            try:
                threshold = Decimal(clean_text(row.get("threshold")))
                if not threshold.is_finite() or not low <= threshold <= high or (whole and threshold % 1):
                    raise InvalidOperation
            except InvalidOperation:
                errors.append(
                    FieldError(
                        f"{kind}.threshold",
                        "out_of_range",
                        N_("Enter a number from {low} to {high}."),
                        params={"low": str(low), "high": str(high)},
                    )
                )
                continue
        clean[kind] = (threshold, enabled)
    if errors:
        raise InvalidInput(errors)
    return clean


class WarningService:
    """Rules and evaluation need risk.manage; the flags are read by anyone who may see the
    customer."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def rules(self) -> list[WarningRule]:
        self.principal.require(CUSTOMERS_READ)
        return list(await self.session.scalars(select(WarningRule).order_by(WarningRule.id)))

    async def update_rules(self, rows: Sequence[Mapping[str, Any]]) -> list[WarningRule]:
        self.principal.require(RISK_MANAGE)
        clean = validate_rules(rows)
        current = {rule.kind: rule for rule in await self.rules()}
        changes: dict[str, Any] = {}
        for kind, (threshold, enabled) in clean.items():
            rule = current[kind]
            before = {"threshold": rule.threshold, "enabled": rule.enabled}
            rule.threshold, rule.enabled = threshold, enabled
            if diff := audit.diff(before, {"threshold": threshold, "enabled": enabled}):
                changes[kind] = diff
        if changes:
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="warning_rules",
                entity_id=None,
                changes=changes,
            )
        return list(current.values())

    async def evaluate(self, as_of: date | None = None) -> EvaluationResult:
        self.principal.require(RISK_MANAGE)
        return await evaluate(self.session, as_of=as_of, actor=self.principal)

    async def flagged(self, *, kind: str | None = None, limit: int = 100) -> list[FlaggedRow]:
        """Live flags on customers in scope, newest first."""
        self.principal.require(CUSTOMERS_READ)
        statement = in_customer_scope(
            select(EarlyWarning, Customer.name)
            .join(Customer, Customer.id == EarlyWarning.customer_id)
            .where(EarlyWarning.cleared_at.is_(None)),
            self.principal,
        )
        if kind:
            statement = statement.where(EarlyWarning.kind == kind)
        rows = await self.session.execute(
            statement.order_by(EarlyWarning.raised_at.desc(), EarlyWarning.id).limit(limit)
        )
        return [FlaggedRow(warning, name) for warning, name in rows.all()]

    async def for_customers(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[EarlyWarning]]:
        """Live flags of many customers in one query."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(EarlyWarning)
                .join(Customer, Customer.id == EarlyWarning.customer_id)
                .where(EarlyWarning.customer_id.in_(customer_ids), EarlyWarning.cleared_at.is_(None)),
                self.principal,
            )
        )
        found: dict[uuid.UUID, list[EarlyWarning]] = {customer_id: [] for customer_id in customer_ids}
        for warning in rows:
            found[warning.customer_id].append(warning)
        return found
