"""RetentionService: policies per data category, the dry run, the run, and legal hold.

What a run does, per enabled policy, to what is older than its period as of a date:

- prospects: customers still prospects with no loan at all, untouched (created, updated,
  contacted) since the cut-off;
- closed_customers: settled or closed customers with no live loan, whose last change, contact,
  loan change or settlement is before the cut-off;
- interactions (by their time), complaints (resolved, by resolution time), pii_access_log (by
  access time), sessions (web sessions expired before the cut-off; delete only);
- audit_events (delete only, at least 365 days; ADR 0011): the start of the hash chain up to the
  last event before the cut-off, applied last so the customers' categories change nothing after it.

A customer with a live loan (active or written off) is never selected; a customer on legal hold
and everything linked to it (loans, collateral, interactions, follow-ups, complaints, risk cases,
flags, import rows, PII access log entries) is skipped by every category.

Deleting a customer relies on the foreign keys of t0004/t0005, all ON DELETE CASCADE from the
customer: collateral (with appraisals and loan links), loans (instalments, repayments,
allocations, classification decisions), interactions, follow-ups, complaints, risk cases (with
measures), early-warning flags. `import_rows.customer_id` has no foreign key, so the rows an
import made for the customer are cleared and unlinked here explicitly. `pii_access_log` has none on purpose:
who looked at an erased customer stays on record until its own policy removes it.

Anonymising ("PII removed, statistics kept") clears a customer's ciphertexts, blind indexes and
masked forms, birth date, occupation and industry, replaces its name with a placeholder naming a
short id, and clears the free text of everything linked to it; amounts, dates, classes, statuses,
region and codes stay, so portfolio statistics do not move.

Audit events can only be deleted, never anonymised: every hash covers its event's details, so
rewriting one breaks the chain (and the trigger refuses any UPDATE). Only a prefix of the chain
goes: `audit.service.prune` verifies it, and the schema's `audit_prune` function (the tenant role
has no DELETE on the table) checks it again, records a checkpoint with the seq and hash of the last
removed event, and deletes it; `audit verify` starts from the latest checkpoint. The cut-off for
audit events is never later than the policy allows as of the database's clock, whatever `as_of`
says (the function refuses otherwise). Legal hold: the prefix stops before the first event about
a customer on hold or a record linked to it (`_held_references`), so a hold keeps that customer's
history and everything after it until the hold is released. A prefix that does not verify is not
pruned; the run reports where the chain breaks instead. Customer events record that identifying
fields changed, never their values (customers.service.AUDIT_REDACTED), so anonymisation leaves
none behind in the events that remain.

A run is one transaction per tenant: a tenant's run either happens entirely, with its retention
run row and audit event (written after the pruning, so never pruned by its own run), or not at
all, and a failure leaves nothing half-anonymised. Runs of a tenant are serialised by a lock on
`retention_runs`, which the dry run takes too. The dry run applies the very same statements
inside a savepoint and rolls it back, so its counts are those a run would make at that moment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, exists, func, literal, or_, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.models import WebSession
from tenantcrm.auth.permissions import ADMIN_RETENTION, Principal
from tenantcrm.collateral.models import Collateral
from tenantcrm.complaints.models import Complaint
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.customers.inputs import clean_text
from tenantcrm.customers.models import Customer, PiiAccess
from tenantcrm.customers.service import CustomerNotFound, in_customer_scope
from tenantcrm.imports.models import ImportRow
from tenantcrm.loans.models import Classification, Loan, Repayment
from tenantcrm.messages import N_
from tenantcrm.retention.models import ErasureRequest, RetentionPolicy, RetentionRun
from tenantcrm.risk.models import RiskCase, RiskMeasure
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

CATEGORIES = (
    "prospects",
    "closed_customers",
    "interactions",
    "complaints",
    "pii_access_log",
    "sessions",
    "audit_events",
)
ACTIONS = ("delete", "anonymise")
DELETE_ONLY = frozenset({"sessions", "audit_events"})
MIN_DAYS, MAX_DAYS = 30, 3650
# A year of audit trail at least (t0009 checks it too): what an investigation usually reaches back to.
CATEGORY_MIN_DAYS = {"audit_events": 365}
TRIGGERS = ("manual", "schedule", "cli")
LIVE_LOAN_STATUSES = ("active", "written_off")
SYSTEM_ACTOR = "system:retention"
# What replaces required free text; optional free text becomes empty.
PLACEHOLDER = "[已匿名]"
ANONYMOUS_NAME = "已匿名 · "
BATCH = 1000
RECENT_RUNS = 20
_LOCK_RUNS = "LOCK TABLE retention_runs IN SHARE ROW EXCLUSIVE MODE"


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category: str
    action: str
    period_days: int
    count: int
    broken_at: int | None = None
    """audit_events only: the chain does not verify at this seq, so nothing was pruned."""


@dataclass(frozen=True, slots=True)
class RetentionResult:
    as_of: date
    dry_run: bool
    categories: list[CategoryCount]
    run_id: uuid.UUID | None = None
    skipped: list[str] = field(default_factory=list)
    """Categories whose policy is disabled."""

    def counts(self) -> dict[str, int]:
        return {c.category: c.count for c in self.categories}

    def audit_chain_broken_at(self) -> int | None:
        return next((c.broken_at for c in self.categories if c.broken_at is not None), None)

    def as_dict(self) -> dict[str, Any]:
        """Numbers and choices only: what the CLI prints and a run records."""
        report: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "actions": {c.category: c.action for c in self.categories},
            "disabled": self.skipped,
        }
        if (broken := self.audit_chain_broken_at()) is not None:
            report["audit_chain_broken_at"] = broken
        return report


def cutoff_of(as_of: date, period_days: int) -> datetime:
    """The start (UTC) of the day `period_days` before `as_of`: older than this is due."""
    return datetime.combine(as_of - timedelta(days=period_days), time.min, tzinfo=UTC)


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _held_customers() -> Any:
    return select(Customer.id).where(Customer.legal_hold)


def _loans_of(ids: Sequence[uuid.UUID]) -> Any:
    return select(Loan.id).where(Loan.customer_id.in_(ids))


def _customer_targets(category: str, action: str, cutoff: datetime) -> Any:
    live_loan = exists().where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOAN_STATUSES))
    statement = select(Customer.id).where(~Customer.legal_hold, ~live_loan)
    if action == "anonymise":
        statement = statement.where(Customer.anonymised_at.is_(None))
    if category == "prospects":
        any_loan = exists().where(Loan.customer_id == Customer.id)
        last = func.greatest(Customer.created_at, Customer.updated_at, Customer.last_contact_at)
        return statement.where(Customer.status == "prospect", ~any_loan, last < cutoff)
    loan_changed = select(func.max(Loan.updated_at)).where(Loan.customer_id == Customer.id).scalar_subquery()
    settled = select(func.max(Loan.settled_on)).where(Loan.customer_id == Customer.id).scalar_subquery()
    # GREATEST ignores NULLs: a customer without loans or contacts is aged by its own change.
    last = func.greatest(Customer.updated_at, Customer.last_contact_at, loan_changed)
    return statement.where(
        Customer.status.in_(("settled", "closed")),
        last < cutoff,
        or_(settled.is_(None), settled < cutoff.date()),
    )


async def _clear_import_rows(session: AsyncSession, ids: Sequence[uuid.UUID], *, unlink: bool) -> None:
    """The staged rows an import made for these customers keep no personal data; a deleted
    customer's rows no longer name it (the column has no foreign key to do so)."""
    values: dict[str, Any] = {"values": {}, "pii_enc": None, "national_id_bidx": None, "phone_bidx": None}
    if unlink:
        values["customer_id"] = None
    await session.execute(update(ImportRow).where(ImportRow.customer_id.in_(ids)).values(notes="", **values))


async def _anonymise_customers(session: AsyncSession, ids: Sequence[uuid.UUID]) -> int:
    blank: dict[str, Any] = {
        f"{name}_{suffix}": None
        for name in ("national_id", "phone", "email", "address")
        for suffix in ("enc", "masked")
    }
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(
            name=ANONYMOUS_NAME + func.left(cast(Customer.id, Text), 8),
            national_id_bidx=None,
            phone_bidx=None,
            pii_key_version=None,
            birth_date=None,
            occupation=None,
            industry=None,
            anonymised_at=func.now(),
            **blank,
        )
    )
    loans = _loans_of(ids)
    for statement in (
        update(Interaction).where(Interaction.customer_id.in_(ids)).values(summary=PLACEHOLDER, next_step=""),
        update(FollowUp).where(FollowUp.customer_id.in_(ids)).values(note=""),
        update(Complaint).where(Complaint.customer_id.in_(ids)).values(content=PLACEHOLDER, resolution=""),
        update(RiskMeasure)
        .where(RiskMeasure.case_id.in_(select(RiskCase.id).where(RiskCase.customer_id.in_(ids))))
        .values(description=PLACEHOLDER),
        update(RiskCase)
        .where(RiskCase.customer_id.in_(ids))
        .values(description=PLACEHOLDER, outcome="", lessons=""),
        update(Collateral).where(Collateral.customer_id.in_(ids)).values(description="", location=""),
        update(Classification).where(Classification.loan_id.in_(loans)).values(reason=PLACEHOLDER),
        update(Repayment)
        .where(Repayment.loan_id.in_(loans), Repayment.reversal_reason.is_not(None))
        .values(reversal_reason=PLACEHOLDER),
    ):
        await session.execute(statement)
    await _clear_import_rows(session, ids, unlink=False)
    return int(result.rowcount or 0)


async def erase_customers(session: AsyncSession, ids: Sequence[uuid.UUID], action: str) -> int:
    """Delete or anonymise these customers with everything linked (see the module docstring);
    the caller has checked legal hold and live loans. Returns how many customers it changed."""
    done = 0
    for chunk in _chunks(ids):
        if action == "anonymise":
            done += await _anonymise_customers(session, chunk)
        else:
            await _clear_import_rows(session, chunk, unlink=True)
            result = await session.execute(delete(Customer).where(Customer.id.in_(chunk)))
            done += int(result.rowcount or 0)
    return done


async def _customers(session: AsyncSession, category: str, action: str, cutoff: datetime) -> int:
    ids = list(
        await session.scalars(
            _customer_targets(category, action, cutoff).order_by(Customer.id).with_for_update(of=Customer)
        )
    )
    return await erase_customers(session, ids, action)


async def _interactions(session: AsyncSession, action: str, cutoff: datetime) -> int:
    due = (Interaction.at < cutoff, Interaction.customer_id.not_in(_held_customers()))
    if action == "delete":
        result = await session.execute(delete(Interaction).where(*due))
    else:
        result = await session.execute(
            update(Interaction)
            .where(*due, Interaction.summary != PLACEHOLDER)
            .values(summary=PLACEHOLDER, next_step="")
        )
    return int(result.rowcount or 0)


async def _complaints(session: AsyncSession, action: str, cutoff: datetime) -> int:
    due = (
        Complaint.status == "resolved",
        Complaint.resolved_at < cutoff,
        Complaint.customer_id.not_in(_held_customers()),
    )
    if action == "delete":
        result = await session.execute(delete(Complaint).where(*due))
    else:
        result = await session.execute(
            update(Complaint)
            .where(*due, Complaint.content != PLACEHOLDER)
            .values(content=PLACEHOLDER, resolution="")
        )
    return int(result.rowcount or 0)


async def _pii_access_log(session: AsyncSession, action: str, cutoff: datetime) -> int:
    due = (PiiAccess.at < cutoff, PiiAccess.customer_id.not_in(_held_customers()))
    if action == "delete":
        result = await session.execute(delete(PiiAccess).where(*due))
    else:
        result = await session.execute(
            update(PiiAccess).where(*due, PiiAccess.purpose != PLACEHOLDER).values(purpose=PLACEHOLDER)
        )
    return int(result.rowcount or 0)


async def _sessions(session: AsyncSession, action: str, cutoff: datetime) -> int:
    result = await session.execute(delete(WebSession).where(WebSession.expires_at < cutoff))
    return int(result.rowcount or 0)


def _held_references() -> Any:
    """(entity_type, entity_id) of the audit events about a customer on legal hold or a record
    linked to it (as the services record them: an appraisal's entity id is its collateral's)."""
    held = _held_customers()
    held_loans = select(Loan.id).where(Loan.customer_id.in_(held))
    held_cases = select(RiskCase.id).where(RiskCase.customer_id.in_(held))

    def refs(entity_type: str, column: Any, *where: Any) -> Any:
        return select(literal(entity_type, Text), cast(column, Text)).where(*where)

    return union_all(
        refs("customer", Customer.id, Customer.legal_hold),
        refs("loan", Loan.id, Loan.customer_id.in_(held)),
        refs("repayment", Repayment.id, Repayment.loan_id.in_(held_loans)),
        refs("collateral", Collateral.id, Collateral.customer_id.in_(held)),
        refs("appraisal", Collateral.id, Collateral.customer_id.in_(held)),
        refs("interaction", Interaction.id, Interaction.customer_id.in_(held)),
        refs("follow_up", FollowUp.id, FollowUp.customer_id.in_(held)),
        refs("complaint", Complaint.id, Complaint.customer_id.in_(held)),
        refs("risk_case", RiskCase.id, RiskCase.customer_id.in_(held)),
        refs("risk_measure", RiskMeasure.id, RiskMeasure.case_id.in_(held_cases)),
        refs("erasure_request", ErasureRequest.id, ErasureRequest.customer_id.in_(held)),
    )


async def _audit_events(
    session: AsyncSession, policy: RetentionPolicy, as_of: date, run_id: uuid.UUID, actor: str
) -> CategoryCount:
    # Real time bounds it too: a later as_of never removes an event the policy still keeps today.
    now = await session.scalar(select(func.now()))
    cutoff = min(
        cutoff_of(as_of, policy.period_days), cutoff_of(now.astimezone(UTC).date(), policy.period_days)
    )
    any_hold = await session.scalar(select(exists().where(Customer.legal_hold)))
    pruned = await audit.prune(
        session,
        cutoff=cutoff,
        run_id=run_id,
        actor_label=actor,
        keep=_held_references() if any_hold else None,
    )
    return CategoryCount(
        policy.category, policy.action, policy.period_days, pruned.removed, pruned.broken_seq
    )


async def _apply(
    session: AsyncSession,
    policies: Sequence[RetentionPolicy],
    as_of: date,
    *,
    run_id: uuid.UUID,
    actor: str,
) -> list[CategoryCount]:
    """Apply the enabled policies in category order (customers first: what their deletion
    removes is not counted again under interactions or complaints; audit events last)."""
    done: list[CategoryCount] = []
    for policy in sorted(policies, key=lambda p: CATEGORIES.index(p.category)):
        if not policy.enabled:
            continue
        if policy.category == "audit_events":
            done.append(await _audit_events(session, policy, as_of, run_id, actor))
            continue
        cutoff = cutoff_of(as_of, policy.period_days)
        if policy.category in ("prospects", "closed_customers"):
            count = await _customers(session, policy.category, policy.action, cutoff)
        else:
            apply = {
                "interactions": _interactions,
                "complaints": _complaints,
                "pii_access_log": _pii_access_log,
                "sessions": _sessions,
            }[policy.category]
            count = await apply(session, policy.action, cutoff)
        done.append(CategoryCount(policy.category, policy.action, policy.period_days, count))
    return done


async def load_policies(session: AsyncSession) -> list[RetentionPolicy]:
    rows = {p.category: p for p in await session.scalars(select(RetentionPolicy))}
    return [rows[c] for c in CATEGORIES if c in rows]


def _disabled(policies: Sequence[RetentionPolicy]) -> list[str]:
    return [p.category for p in policies if not p.enabled]


async def plan_retention(session: AsyncSession, as_of: date) -> RetentionResult:
    """What a run would do now, per enabled category; the tenant's data is left as it was."""
    policies = await load_policies(session)
    savepoint = await session.begin_nested()
    try:
        # Not beside a run: a run pruning the audit chain meanwhile would move its start.
        await session.execute(text(_LOCK_RUNS))
        categories = await _apply(session, policies, as_of, run_id=uuid.uuid4(), actor=SYSTEM_ACTOR)
    finally:
        await savepoint.rollback()
    return RetentionResult(as_of, True, categories, skipped=_disabled(policies))


async def run_retention(
    session: AsyncSession,
    as_of: date,
    *,
    trigger: str,
    actor: Principal | None = None,
    once_per_day: bool = False,
) -> RetentionResult | None:
    """Apply the enabled policies in the caller's transaction, record the run and audit it.

    `actor` None is the system (the CLI or the schedule). With `once_per_day`, a run of the same
    trigger for the same date already recorded makes this one do nothing (None).
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown retention trigger {trigger!r}")
    # One run at a time per tenant; a second waits and then sees the first one's work done.
    await session.execute(text(_LOCK_RUNS))
    if once_per_day and await session.scalar(
        select(RetentionRun.id).where(RetentionRun.trigger == trigger, RetentionRun.as_of == as_of).limit(1)
    ):
        return None
    policies = await load_policies(session)
    run_id, label = uuid.uuid4(), actor.email if actor else SYSTEM_ACTOR
    categories = await _apply(session, policies, as_of, run_id=run_id, actor=label)
    result = RetentionResult(as_of, False, categories, run_id, _disabled(policies))
    counts: dict[str, dict[str, Any]] = {
        c.category: {"action": c.action, "period_days": c.period_days, "count": c.count} for c in categories
    }
    for c in categories:
        if c.broken_at is not None:
            counts[c.category]["broken_at"] = c.broken_at
    session.add(
        RetentionRun(
            id=result.run_id,
            as_of=as_of,
            trigger=trigger,
            dry_run=False,
            actor_id=actor.user_id if actor else None,
            actor=label,
            counts=counts,
        )
    )
    await audit.record(
        session,
        actor=actor,
        actor_label=None if actor else SYSTEM_ACTOR,
        action="retention_run",
        entity_type="retention",
        entity_id=str(result.run_id),
        changes={"as_of": as_of.isoformat(), "trigger": trigger, "counts": counts},
    )
    return result


async def run_scheduled(session: AsyncSession, as_of: date) -> RetentionResult | None:
    """The daily run: nothing at all when no policy is enabled, at most one run per day."""
    if not any(p.enabled for p in await load_policies(session)):
        return None
    return await run_retention(session, as_of, trigger="schedule", once_per_day=True)


def validate_policies(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, str, bool]]:
    """{category: (period_days, action, enabled)}; unknown categories, periods outside
    30..3650 days (365..3650 for audit events) and actions a category cannot take are refused,
    each on its own field."""
    errors: list[FieldError] = []
    clean: dict[str, tuple[int, str, bool]] = {}
    for row in rows:
        category = clean_text(row.get("category")).lower()
        if category not in CATEGORIES:
            errors.append(FieldError("category", "invalid_choice", N_("Choose one of the listed values.")))
            continue
        period_text = clean_text(row.get("period_days"))
        period = int(period_text) if period_text.isdigit() and len(period_text) < 6 else None
        low = CATEGORY_MIN_DAYS.get(category, MIN_DAYS)
        if period is None or not low <= period <= MAX_DAYS:
            errors.append(
                FieldError(
                    f"{category}.period_days",
                    "out_of_range",
                    N_("Enter a whole number of days from {low} to {high}."),
                    params={"low": str(low), "high": str(MAX_DAYS)},
                )
            )
        action = clean_text(row.get("action")).lower()
        allowed = ("delete",) if category in DELETE_ONLY else ACTIONS
        if action not in allowed:
            errors.append(
                FieldError(f"{category}.action", "invalid_choice", N_("Choose one of the listed values."))
            )
        enabled = row.get("enabled") is True or clean_text(row.get("enabled")).lower() in ("1", "true", "on")
        if period is not None and action in allowed:
            clean[category] = (period, action, enabled)
    if errors:
        raise InvalidInput(errors)
    return clean


class RetentionService:
    """Everything here needs admin.retention: reading and changing the policies, the dry run, a
    run, the run history and legal hold.

    Legal hold is admin.retention rather than risk.manage: a hold suspends retention and later
    erasure, a decision about keeping data that belongs with whoever governs its deletion, and
    risk officers manage cases without governing what the institution keeps."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def policies(self) -> list[RetentionPolicy]:
        self.principal.require(ADMIN_RETENTION)
        return await load_policies(self.session)

    async def update_policies(self, rows: Sequence[Mapping[str, Any]]) -> list[RetentionPolicy]:
        self.principal.require(ADMIN_RETENTION)
        clean = validate_policies(rows)
        current = {p.category: p for p in await load_policies(self.session)}
        changes: dict[str, Any] = {}
        for category, (period, action, enabled) in clean.items():
            policy = current[category]
            before = {"period_days": policy.period_days, "action": policy.action, "enabled": policy.enabled}
            after = {"period_days": period, "action": action, "enabled": enabled}
            if diff := audit.diff(before, after):
                policy.period_days, policy.action, policy.enabled = period, action, enabled
                policy.updated_at = datetime.now(UTC)
                policy.updated_by = self.principal.user_id
                changes[category] = diff
        if changes:
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="retention_policies",
                entity_id=None,
                changes=changes,
            )
        return list(current.values())

    async def plan(self, as_of: date | None = None) -> RetentionResult:
        self.principal.require(ADMIN_RETENTION)
        return await plan_retention(self.session, as_of or date.today())

    async def run(self, as_of: date | None = None) -> RetentionResult:
        self.principal.require(ADMIN_RETENTION)
        result = await run_retention(
            self.session, as_of or date.today(), trigger="manual", actor=self.principal
        )
        assert result is not None  # only once_per_day runs are ever skipped
        return result

    async def recent_runs(self, limit: int = RECENT_RUNS) -> list[RetentionRun]:
        self.principal.require(ADMIN_RETENTION)
        return list(
            await self.session.scalars(
                select(RetentionRun).order_by(RetentionRun.started_at.desc(), RetentionRun.id).limit(limit)
            )
        )

    async def set_legal_hold(self, customer_id: str | uuid.UUID, hold: bool) -> Customer:
        """Put a customer on legal hold or release it; audited when it changes."""
        self.principal.require(ADMIN_RETENTION)
        parsed = parse_uuid(customer_id)
        customer = None
        if parsed is not None:
            customer = await self.session.scalar(
                in_customer_scope(
                    select(Customer).where(Customer.id == parsed), self.principal
                ).with_for_update()
            )
        if customer is None:
            raise CustomerNotFound
        if customer.legal_hold != hold:
            before = customer.legal_hold
            # Not customer activity: updated_at stays, so the hold does not reset retention ages.
            customer.legal_hold = hold
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="customer",
                entity_id=str(customer.id),
                changes={"legal_hold": {"from": before, "to": hold}},
            )
        return customer
