"""LoanService: loans of customers in scope, their schedules, repayments, arrears and class."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    and_,
    delete,
    distinct,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, LOANS_CLASSIFY, LOANS_WRITE, Principal
from tenantcrm.collateral.models import Collateral
from tenantcrm.collateral.service import ratio
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService, in_customer_scope
from tenantcrm.loans import ledger as book
from tenantcrm.loans.inputs import (
    validate_classification,
    validate_flags,
    validate_loan,
    validate_reason,
    validate_repayment,
    validate_rules,
)
from tenantcrm.loans.models import (
    AllocationRow,
    Classification,
    ClassificationRuleRow,
    CustomerLoanSummary,
    InstallmentRow,
    Loan,
    Repayment,
    loan_collateral,
)
from tenantcrm.loans.schedule import build_schedule
from tenantcrm.messages import N_
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

STATUSES = ("active", "settled", "written_off", "cancelled")
# Orders of the portfolio, each paged on (key, id) with its index: loans_created_at_id (t0004),
# loans_amount_id (t0011).
LOAN_SORTS = ("created_at", "amount")
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
ZERO = Decimal("0.00")
# Days past due covered by each arrears bucket, inclusive (None: no upper bound).
BUCKET_DAYS: dict[str, tuple[int, int | None]] = {
    "current": (0, 0),
    "1-30": (1, 30),
    "31-60": (31, 60),
    "61-90": (61, 90),
    "91-180": (91, 180),
    "181-360": (181, 360),
    "360+": (361, None),
}


class LoanNotFound(Exception):
    """No such loan on a customer this principal may see."""


class RepaymentNotFound(Exception):
    """No such repayment on a loan this principal may see."""


@dataclass(frozen=True, slots=True)
class LoanFilter:
    status: str | None = None
    classification: str | None = None
    bucket: str | None = None
    customer_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class LoanRow:
    """A loan in the portfolio list with its arrears as of the list's date."""

    loan: Loan
    customer_name: str
    outstanding_principal: Decimal
    days_past_due: int
    overdue_amount: Decimal
    next_due_date: date | None

    @property
    def bucket(self) -> str:
        return book.bucket_for(self.days_past_due)


@dataclass(slots=True)
class LoanPage:
    rows: list[LoanRow]
    has_next_page: bool
    end_cursor: str | None
    total_count: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    classification: str
    rules: list[book.Rule]
    arrears: book.Arrears


def days_past_due_sql(as_of: date) -> Any:
    """Days since the oldest instalment due before `as_of` and not fully paid by then (0 if none)."""
    oldest = (
        select(func.min(InstallmentRow.due_date))
        .where(
            InstallmentRow.loan_id == Loan.id,
            InstallmentRow.due_date < as_of,
            or_(InstallmentRow.paid_on.is_(None), InstallmentRow.paid_on > as_of),
        )
        .correlate(Loan)
        .scalar_subquery()
    )
    return func.coalesce(literal(as_of, Date) - oldest, literal(0, Integer))


def oldest_unpaid_due_sql() -> Any:
    """The due date of the loan's oldest instalment not fully paid (NULL if none). With no
    repayment dated after `as_of`, days_past_due_sql(as_of) is max(0, as_of - this)."""
    return (
        select(func.min(InstallmentRow.due_date))
        .where(InstallmentRow.loan_id == Loan.id, InstallmentRow.paid_on.is_(None))
        .correlate(Loan)
        .scalar_subquery()
    )


def overdue_amount_sql(as_of: date) -> Any:
    due = (
        select(func.coalesce(func.sum(InstallmentRow.principal + InstallmentRow.interest), 0))
        .where(InstallmentRow.loan_id == Loan.id, InstallmentRow.due_date < as_of)
        .correlate(Loan)
        .scalar_subquery()
    )
    paid = (
        select(func.coalesce(func.sum(AllocationRow.principal + AllocationRow.interest), 0))
        .join(
            InstallmentRow,
            and_(
                InstallmentRow.loan_id == AllocationRow.loan_id, InstallmentRow.number == AllocationRow.number
            ),
        )
        .where(
            AllocationRow.loan_id == Loan.id, InstallmentRow.due_date < as_of, AllocationRow.paid_on <= as_of
        )
        .correlate(Loan)
        .scalar_subquery()
    )
    return due - paid


def outstanding_principal_sql(as_of: date) -> Any:
    repaid = (
        select(func.coalesce(func.sum(AllocationRow.principal), 0))
        .where(AllocationRow.loan_id == Loan.id, AllocationRow.paid_on <= as_of)
        .correlate(Loan)
        .scalar_subquery()
    )
    return Loan.amount - repaid


def next_due_date_sql(as_of: date) -> Any:
    return (
        select(func.min(InstallmentRow.due_date))
        .where(
            InstallmentRow.loan_id == Loan.id,
            InstallmentRow.due_date >= as_of,
            or_(InstallmentRow.paid_on.is_(None), InstallmentRow.paid_on > as_of),
        )
        .correlate(Loan)
        .scalar_subquery()
    )


LIVE_STATUSES = ("active", "written_off")  # as segments, the dashboard and early warning count loans
# Later than any repayment: validate_repayment refuses a date after today, so every allocation counts.
ALL_PAID = date(9999, 12, 31)


def summary_rows_sql(customer_ids: Sequence[uuid.UUID]) -> Any:
    """The customer_loan_summary rows of these customers as their loans stand, from the same SQL
    the portfolio reads (customers without a live loan have none)."""
    return _summary_rows(Loan.customer_id.in_(customer_ids))


def _summary_rows(customers: ColumnElement[bool]) -> Any:
    return (
        select(
            Loan.customer_id,
            func.count().label("live_loans"),
            func.sum(outstanding_principal_sql(ALL_PAID)).label("outstanding"),
            func.min(oldest_unpaid_due_sql()).label("oldest_unpaid_due"),
            func.array_agg(distinct(Loan.classification)).label("classes"),
        )
        .where(customers, Loan.status.in_(LIVE_STATUSES))
        .group_by(Loan.customer_id)
    )


async def refresh_summaries(session: AsyncSession, customer_ids: Iterable[uuid.UUID]) -> int:
    """Recompute the stored loan figures of these customers (ADR 0010); every write to a
    customer's loans, instalments, allocations, class or status calls it before its transaction
    ends. Locks the customers' rows first, so two writers of one customer's loans refresh one
    after the other and the second reads what the first committed. Returns the rows changed."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    return await _refresh(session, lambda column: column.in_(ids))


async def refresh_summary_range(session: AsyncSession, after: uuid.UUID | None, upto: uuid.UUID) -> int:
    """refresh_summaries for every customer with an id in (after, upto]: the rebuild's chunks,
    read by range rather than by a list of ids."""

    def in_range(column: Any) -> ColumnElement[bool]:
        return column <= upto if after is None else and_(column > after, column <= upto)

    return await _refresh(session, in_range)


async def _refresh(session: AsyncSession, picked: Callable[[Any], ColumnElement[bool]]) -> int:
    await session.execute(
        select(Customer.id).where(picked(Customer.id)).order_by(Customer.id).with_for_update(key_share=True)
    )
    rows = _summary_rows(picked(Loan.customer_id)).subquery()
    stored = CustomerLoanSummary.__table__
    upsert = pg_insert(stored).from_select(
        ["customer_id", "live_loans", "outstanding", "oldest_unpaid_due", "classes"], select(rows)
    )
    figures = ("live_loans", "outstanding", "oldest_unpaid_due", "classes")
    upsert = upsert.on_conflict_do_update(
        index_elements=[stored.c.customer_id],
        set_={**{name: upsert.excluded[name] for name in figures}, "refreshed_at": func.now()},
        where=tuple_(*(stored.c[name] for name in figures)).is_distinct_from(
            tuple_(*(upsert.excluded[name] for name in figures))
        ),
    )
    changed = (await session.execute(upsert.returning(stored.c.customer_id))).all()
    gone = await session.execute(
        delete(CustomerLoanSummary)
        .where(
            picked(CustomerLoanSummary.customer_id),
            ~exists().where(
                Loan.customer_id == CustomerLoanSummary.customer_id, Loan.status.in_(LIVE_STATUSES)
            ),
        )
        .returning(CustomerLoanSummary.customer_id)
    )
    return len(changed) + len(gone.all())


class LoanService:
    """Loans hang off customers: whoever may see the customer may see its loans. Writing loans
    and repayments needs loans.write; classifying (and the rules) needs loans.classify."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _scoped(self, statement: Any) -> Any:
        return in_customer_scope(statement.join(Customer, Customer.id == Loan.customer_id), self.principal)

    # --- reading ---

    async def get_loan(self, loan_id: str | uuid.UUID, *, for_update: bool = False) -> Loan:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(loan_id)
        if parsed is None:
            raise LoanNotFound
        statement = self._scoped(select(Loan)).where(Loan.id == parsed)
        if for_update:
            statement = statement.with_for_update(of=Loan)
        loan = await self.session.scalar(statement)
        if loan is None:
            raise LoanNotFound
        return loan

    async def loans_for_customers(self, customer_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Loan]]:
        """Loans of many customers in one query, oldest first."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            self._scoped(select(Loan))
            .where(Loan.customer_id.in_(customer_ids))
            .order_by(Loan.start_date, Loan.created_at, Loan.id)
        )
        found: dict[uuid.UUID, list[Loan]] = {customer_id: [] for customer_id in customer_ids}
        for loan in rows:
            found[loan.customer_id].append(loan)
        return found

    async def loans_for_collateral(self, collateral_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Loan]]:
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.execute(
            self._scoped(select(loan_collateral.c.collateral_id, Loan))
            .join(loan_collateral, loan_collateral.c.loan_id == Loan.id)
            .where(loan_collateral.c.collateral_id.in_(collateral_ids))
            .order_by(Loan.start_date, Loan.id)
        )
        found: dict[uuid.UUID, list[Loan]] = {collateral_id: [] for collateral_id in collateral_ids}
        for collateral_id, loan in rows:
            found[collateral_id].append(loan)
        return found

    async def collateral_for_loans(self, loan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Collateral]]:
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.execute(
            self._scoped(select(loan_collateral.c.loan_id, Collateral).select_from(Loan))
            .join(loan_collateral, loan_collateral.c.loan_id == Loan.id)
            .join(Collateral, Collateral.id == loan_collateral.c.collateral_id)
            .where(Loan.id.in_(loan_ids))
            .order_by(Collateral.created_at, Collateral.id)
        )
        found: dict[uuid.UUID, list[Collateral]] = {loan_id: [] for loan_id in loan_ids}
        for loan_id, collateral in rows:
            found[loan_id].append(collateral)
        return found

    async def installments_for_loans(
        self, loan_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[InstallmentRow]]:
        """Current schedules of many loans in one query (scope checked on the loans)."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            self._scoped(select(InstallmentRow).join(Loan, Loan.id == InstallmentRow.loan_id))
            .where(InstallmentRow.loan_id.in_(loan_ids))
            .order_by(InstallmentRow.loan_id, InstallmentRow.number)
        )
        found: dict[uuid.UUID, list[InstallmentRow]] = {loan_id: [] for loan_id in loan_ids}
        for row in rows:
            found[row.loan_id].append(row)
        return found

    async def repayments_for_loans(self, loan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Repayment]]:
        """Every repayment of many loans, reversed ones included (history), in applied order."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            self._scoped(select(Repayment).join(Loan, Loan.id == Repayment.loan_id))
            .where(Repayment.loan_id.in_(loan_ids))
            .order_by(Repayment.loan_id, Repayment.paid_on, Repayment.sequence)
        )
        found: dict[uuid.UUID, list[Repayment]] = {loan_id: [] for loan_id in loan_ids}
        for row in rows:
            found[row.loan_id].append(row)
        return found

    async def schedule(self, loan_id: str | uuid.UUID) -> list[InstallmentRow]:
        loan = await self.get_loan(loan_id)
        return (await self.installments_for_loans([loan.id]))[loan.id]

    async def repayments(self, loan_id: str | uuid.UUID) -> list[Repayment]:
        loan = await self.get_loan(loan_id)
        return (await self.repayments_for_loans([loan.id]))[loan.id]

    async def ledgers_for(self, loans: Sequence[Loan]) -> dict[uuid.UUID, book.Ledger]:
        """The stored replays (instalments and allocations) of many loans in two queries. A loan
        out of the principal's scope has no instalments to read, so it is left out."""
        self.principal.require(CUSTOMERS_READ)
        ids = [loan.id for loan in loans]
        if not ids:
            return {}
        lines = await self.session.scalars(
            self._scoped(select(InstallmentRow).join(Loan, Loan.id == InstallmentRow.loan_id))
            .where(InstallmentRow.loan_id.in_(ids))
            .order_by(InstallmentRow.loan_id, InstallmentRow.number)
        )
        allocations = await self.session.scalars(
            self._scoped(
                select(AllocationRow)
                .join(Loan, Loan.id == AllocationRow.loan_id)
                .join(Repayment, Repayment.id == AllocationRow.repayment_id)
            )
            .where(AllocationRow.loan_id.in_(ids))
            .order_by(AllocationRow.loan_id, AllocationRow.paid_on, Repayment.sequence, AllocationRow.number)
        )
        found: dict[uuid.UUID, book.Ledger] = {}
        for row in lines:
            found.setdefault(row.loan_id, book.Ledger(lines=[])).lines.append(
                book.Line(
                    row.number,
                    row.due_date,
                    row.principal,
                    row.interest,
                    row.principal_paid,
                    row.interest_paid,
                    row.paid_on,
                )
            )
        for a in allocations:
            found[a.loan_id].allocations.append(
                book.Allocation(a.repayment_id, a.paid_on, a.number, a.interest, a.principal)
            )
        for loan in loans:
            if loan.id in found:
                found[loan.id].settled_on = loan.settled_on
        return found

    async def ledger(self, loan: Loan) -> book.Ledger:
        """The loan's stored replay (instalments and allocations) as a ledger."""
        found = await self.ledgers_for([loan])
        if loan.id not in found:
            raise LoanNotFound
        return found[loan.id]

    async def arrears_for(self, loans: Sequence[Loan], as_of: date) -> dict[uuid.UUID, book.Arrears]:
        """Arrears of many loans (already read in scope) as of one date, in two queries."""
        ledgers = await self.ledgers_for(loans)
        return {loan_id: book.arrears(ledger, as_of) for loan_id, ledger in ledgers.items()}

    async def arrears(self, loan: Loan, as_of: date | None = None) -> book.Arrears:
        """Days past due, overdue amounts and bucket of a loan (already read in scope) as of a date."""
        return book.arrears(await self.ledger(loan), as_of or date.today())

    async def payoffs_for(self, loans: Sequence[Loan], on: date) -> dict[uuid.UUID, Decimal]:
        """What one repayment on that date would need to be to settle each loan, in two queries."""
        ledgers = await self.ledgers_for(loans)
        return {loan_id: book.payoff_amount(ledger, on) for loan_id, ledger in ledgers.items()}

    async def payoff_amount(self, loan: Loan, on: date | None = None) -> Decimal:
        """What one repayment on that date would need to be to settle the loan."""
        return book.payoff_amount(await self.ledger(loan), on or date.today())

    async def loan_to_value(self, loans: Sequence[Loan]) -> dict[uuid.UUID, Decimal | None]:
        """Outstanding principal over the appraised value of each loan's linked collateral."""
        self.principal.require(CUSTOMERS_READ)
        if not loans:
            return {}
        ids = [loan.id for loan in loans]
        today = date.today()
        outstanding = dict(
            (
                await self.session.execute(
                    self._scoped(select(Loan.id, outstanding_principal_sql(today))).where(Loan.id.in_(ids))
                )
            ).all()
        )
        values = dict(
            (
                await self.session.execute(
                    select(loan_collateral.c.loan_id, func.sum(Collateral.appraised_value))
                    .join(Collateral, Collateral.id == loan_collateral.c.collateral_id)
                    .where(loan_collateral.c.loan_id.in_(list(outstanding)))
                    .group_by(loan_collateral.c.loan_id)
                )
            ).all()
        )
        # A loan out of scope has no outstanding figure and is left out, like in the other batches.
        return {
            loan_id: ratio(Decimal(owed), values.get(loan_id) or ZERO)
            for loan_id, owed in outstanding.items()
        }

    async def customer_exposure(self, customer_id: str | uuid.UUID) -> dict[str, Any]:
        """A customer's outstanding principal on live loans, collateral value and their ratio."""
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        today = date.today()
        outstanding = Decimal(
            await self.session.scalar(
                select(func.coalesce(func.sum(outstanding_principal_sql(today)), 0)).where(
                    Loan.customer_id == customer.id, Loan.status.in_(("active", "written_off"))
                )
            )
        )
        value = Decimal(
            await self.session.scalar(
                select(func.coalesce(func.sum(Collateral.appraised_value), 0)).where(
                    Collateral.customer_id == customer.id
                )
            )
        )
        return {
            "outstanding_principal": outstanding,
            "collateral_value": value,
            "loan_to_value": ratio(outstanding, value),
        }

    async def list_loans(
        self,
        filter: LoanFilter | None = None,
        *,
        as_of: date | None = None,
        first: int | None = None,
        after: str | None = None,
        sort: str = "created_at",
        descending: bool = True,
    ) -> LoanPage:
        """The portfolio: loans in scope, newest first unless `sort` (LOAN_SORTS) says otherwise,
        with arrears as of a date, filterable by status, classification and arrears bucket; keyset
        pages (the cursor is a loan id: its sort value is read again, so any order can use it)."""
        self.principal.require(CUSTOMERS_READ)
        if sort not in LOAN_SORTS:
            raise ValueError(f"unknown loan order {sort}")
        key = getattr(Loan, sort)
        flt = filter or LoanFilter()
        as_of = as_of or date.today()
        size = DEFAULT_PAGE_SIZE if first is None else min(max(int(first), 1), MAX_PAGE_SIZE)
        dpd = days_past_due_sql(as_of)
        statement = self._scoped(
            select(
                Loan,
                Customer.name,
                outstanding_principal_sql(as_of),
                dpd,
                overdue_amount_sql(as_of),
                next_due_date_sql(as_of),
            )
        )
        conditions = []
        if flt.status:
            conditions.append(Loan.status == flt.status)
        if flt.classification:
            conditions.append(Loan.classification == flt.classification)
        if flt.customer_id:
            conditions.append(Loan.customer_id == flt.customer_id)
        if flt.bucket:
            low, high = BUCKET_DAYS[flt.bucket]
            conditions.append(dpd >= low if high is None else dpd.between(low, high))
        statement = statement.where(*conditions)
        total = int(
            await self.session.scalar(self._scoped(select(func.count()).select_from(Loan)).where(*conditions))
            or 0
        )
        if after:
            anchor = parse_uuid(after)
            if anchor is None:
                raise InvalidInput(
                    [FieldError("after", "invalid_cursor", N_("Choose one of the listed values."))]
                )
            other = aliased(Loan)
            anchor_key = select(getattr(other, sort)).where(other.id == anchor).scalar_subquery()
            position, boundary = tuple_(key, Loan.id), tuple_(anchor_key, literal(anchor))
            statement = statement.where(position < boundary if descending else position > boundary)
        ordering = (key.desc(), Loan.id.desc()) if descending else (key.asc(), Loan.id.asc())
        result = await self.session.execute(statement.order_by(*ordering).limit(size + 1))
        rows = [
            LoanRow(loan, name, Decimal(outstanding), int(days), Decimal(overdue), next_due)
            for loan, name, outstanding, days, overdue, next_due in result.all()
        ]
        more = len(rows) > size
        rows = rows[:size]
        return LoanPage(rows, more, str(rows[-1].loan.id) if rows else None, total)

    # --- writing ---

    async def create_loan(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Loan:
        """A loan with its contractual schedule; a prospect becomes an active customer."""
        self.principal.require(LOANS_WRITE)
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        values = validate_loan(data)
        collateral_ids = values.pop("collateral_ids")
        if collateral_ids:
            owned = set(
                await self.session.scalars(
                    select(Collateral.id).where(
                        Collateral.id.in_(collateral_ids), Collateral.customer_id == customer.id
                    )
                )
            )
            if owned != set(collateral_ids):
                raise InvalidInput(
                    [
                        FieldError(
                            "collateral_ids",
                            "not_this_customer",
                            N_("Only this customer's collateral can secure the loan."),
                        )
                    ]
                )
        schedule = build_schedule(
            values["amount"],
            values["annual_rate"],
            values["term_months"],
            values["method"],
            values["start_date"],
            values["first_due_date"],
        )
        loan = Loan(id=uuid.uuid4(), customer_id=customer.id, created_by=self.principal.user_id, **values)
        self.session.add(loan)
        await self.session.flush()
        if collateral_ids:
            await self.session.execute(
                insert(loan_collateral), [{"loan_id": loan.id, "collateral_id": c} for c in collateral_ids]
            )
        await self._store(loan, book.replay(schedule, loan.annual_rate, loan.method, []))
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="loan",
            entity_id=str(loan.id),
            changes=audit.diff(
                {},
                {
                    "customer_id": customer.id,
                    "collateral_ids": [str(c) for c in collateral_ids] or None,
                    **values,
                },
            ),
        )
        if customer.status == "prospect":
            # Booking the first loan is what makes a prospect a customer: part of loans.write,
            # not an edit of the customer's record (customers.write), audited as the customer's.
            customer.status = "active"
            customer.updated_at = datetime.now(UTC)
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="customer",
                entity_id=str(customer.id),
                changes=audit.diff({"status": "prospect"}, {"status": "active"}),
            )
        return loan

    async def record_repayment(self, loan_id: str | uuid.UUID, data: Mapping[str, Any]) -> Repayment:
        """Record a repayment and re-allocate the loan's repayments; refuses more than settles it."""
        (repayment,) = await self.record_repayments(loan_id, [data])
        return repayment

    async def record_repayments(
        self, loan_id: str | uuid.UUID, rows: Sequence[Mapping[str, Any]]
    ) -> list[Repayment]:
        """Record several repayments of one loan at once (a history brought in), re-allocated
        once; all or none. A refused row is named by its index in the error's field."""
        self.principal.require(LOANS_WRITE)
        loan = await self.get_loan(loan_id, for_update=True)  # one writer per loan at a time
        if loan.status == "cancelled":
            raise InvalidInput(
                [FieldError("loan", "cancelled", N_("This loan was cancelled; it takes no repayments."))]
            )
        several = len(rows) > 1
        errors: list[FieldError] = []
        repayments: list[Repayment] = []
        for index, data in enumerate(rows):
            try:
                values = validate_repayment(data, start_date=loan.start_date)
            except InvalidInput as invalid:
                prefix = f"repayments.{index}." if several else ""
                errors += [FieldError(prefix + e.field, e.code, e.message, e.params) for e in invalid.errors]
                continue
            repayments.append(
                Repayment(id=uuid.uuid4(), loan_id=loan.id, recorded_by=self.principal.user_id, **values)
            )
        if errors:
            raise InvalidInput(errors)
        try:
            async with self.session.begin_nested():  # a refused repayment leaves no trace
                for repayment in repayments:
                    self.session.add(repayment)
                    await self.session.flush()  # each takes its entry sequence, in order
                await self._replay(loan)
        except book.Overpayment as over:
            raise _overpayment(over, repayments) from None
        for repayment in repayments:
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.CREATE,
                entity_type="repayment",
                entity_id=str(repayment.id),
                changes={
                    "loan_id": str(loan.id),
                    "amount": str(repayment.amount),
                    "paid_on": repayment.paid_on.isoformat(),
                    "channel": repayment.channel,
                    "reference": repayment.reference or None,
                },
            )
        return repayments

    async def reverse_repayment(self, repayment_id: str | uuid.UUID, reason: Any) -> Repayment:
        """Mark a mistaken repayment reversed (it stays in the history) and re-allocate the rest."""
        self.principal.require(LOANS_WRITE)
        parsed = parse_uuid(repayment_id)
        loan_id = (
            await self.session.scalar(select(Repayment.loan_id).where(Repayment.id == parsed))
            if parsed
            else None
        )
        if loan_id is None:
            raise RepaymentNotFound
        try:
            loan = await self.get_loan(loan_id, for_update=True)
        except LoanNotFound:
            raise RepaymentNotFound from None
        repayment = await self.session.scalar(select(Repayment).where(Repayment.id == parsed))
        assert repayment is not None
        if repayment.reversed_at is not None:
            raise InvalidInput(
                [FieldError("repayment", "already_reversed", N_("This repayment was already reversed."))]
            )
        text = validate_reason(reason)
        repayment.reversed_at = datetime.now(UTC)
        repayment.reversed_by = self.principal.user_id
        repayment.reversal_reason = text
        await self.session.flush()
        await self._replay(loan)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.REVERSE,
            entity_type="repayment",
            entity_id=str(repayment.id),
            changes={"loan_id": str(loan.id), "amount": str(repayment.amount), "reason": text},
        )
        return repayment

    async def _replay(self, loan: Loan) -> None:
        """Re-allocate every repayment that counts over the contractual schedule and store it."""
        payments = await self.session.execute(
            select(Repayment.id, Repayment.paid_on, Repayment.amount)
            .where(Repayment.loan_id == loan.id, Repayment.reversed_at.is_(None))
            .order_by(Repayment.paid_on, Repayment.sequence)
        )
        schedule = build_schedule(
            loan.amount, loan.annual_rate, loan.term_months, loan.method, loan.start_date, loan.first_due_date
        )
        ledger = book.replay(
            schedule, loan.annual_rate, loan.method, [book.Payment(*row) for row in payments.all()]
        )
        await self._store(loan, ledger)

    async def _store(self, loan: Loan, ledger: book.Ledger) -> None:
        await self.session.execute(delete(AllocationRow).where(AllocationRow.loan_id == loan.id))
        await self.session.execute(delete(InstallmentRow).where(InstallmentRow.loan_id == loan.id))
        await self.session.execute(
            insert(InstallmentRow),
            [
                {
                    "loan_id": loan.id,
                    "number": line.number,
                    "due_date": line.due_date,
                    "principal": line.principal,
                    "interest": line.interest,
                    "principal_paid": line.principal_paid,
                    "interest_paid": line.interest_paid,
                    "paid_on": line.paid_on,
                }
                for line in ledger.lines
            ],
        )
        if ledger.allocations:
            await self.session.execute(
                insert(AllocationRow),
                [
                    {
                        "repayment_id": piece.payment_id,
                        "number": piece.number,
                        "loan_id": loan.id,
                        "paid_on": piece.paid_on,
                        "interest": piece.interest,
                        "principal": piece.principal,
                    }
                    for piece in ledger.allocations
                ],
            )
        if ledger.settled_on is not None and loan.status == "active":
            loan.status, loan.settled_on = "settled", ledger.settled_on
        elif ledger.settled_on is None and loan.status == "settled":
            loan.status, loan.settled_on = "active", None
        elif loan.status == "settled":
            loan.settled_on = ledger.settled_on
        loan.updated_at = datetime.now(UTC)
        await self.session.flush()
        await refresh_summaries(self.session, [loan.customer_id])

    # --- classification ---

    async def rules(self) -> list[book.Rule]:
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(select(ClassificationRuleRow).order_by(ClassificationRuleRow.id))
        return [book.Rule(row.classification, row.min_days_past_due, row.flag) for row in rows]

    async def replace_rules(self, rows: Any) -> list[book.Rule]:
        """Replace the tenant's classification rules as a whole (audited with before and after)."""
        self.principal.require(LOANS_CLASSIFY)
        rules = validate_rules(rows)
        before = [_rule_text(rule) for rule in await self.rules()]
        await self.session.execute(delete(ClassificationRuleRow))
        if rules:
            await self.session.execute(
                insert(ClassificationRuleRow),
                [{"classification": c, "min_days_past_due": d, "flag": f} for c, d, f in rules],
            )
        after = await self.rules()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.UPDATE,
            entity_type="classification_rules",
            entity_id=None,
            changes={"rules": {"from": before, "to": [_rule_text(rule) for rule in after]}},
        )
        return after

    async def suggestions_for(self, loans: Sequence[Loan], as_of: date) -> dict[uuid.UUID, Suggestion]:
        """The class the tenant's rules give each loan as of a date, in three queries."""
        arrears = await self.arrears_for(loans, as_of)
        rules = await self.rules()
        flags = {loan.id: loan.flags for loan in loans}
        found: dict[uuid.UUID, Suggestion] = {}
        for loan_id, figures in arrears.items():
            classification, matched = book.suggest_classification(
                figures.days_past_due, flags[loan_id], rules
            )
            found[loan_id] = Suggestion(classification, matched, figures)
        return found

    async def suggestion(self, loan: Loan, as_of: date | None = None) -> Suggestion:
        """The class the tenant's rules give the loan as of a date (the worst that matches)."""
        found = await self.suggestions_for([loan], as_of or date.today())
        if loan.id not in found:
            raise LoanNotFound
        return found[loan.id]

    async def classify(self, loan_id: str | uuid.UUID, classification: Any, reason: Any) -> Classification:
        """A manual five-category decision with its reason, kept in the loan's history."""
        self.principal.require(LOANS_CLASSIFY)
        loan = await self.get_loan(loan_id, for_update=True)
        errors: list[FieldError] = []
        chosen = text = None
        try:
            chosen = validate_classification(classification)
        except InvalidInput as invalid:
            errors.extend(invalid.errors)
        try:
            text = validate_reason(reason)
        except InvalidInput as invalid:
            errors.extend(invalid.errors)
        if errors:
            raise InvalidInput(errors)
        suggestion = await self.suggestion(loan)
        decision = Classification(
            loan_id=loan.id,
            classification=chosen,
            previous=loan.classification,
            suggested=suggestion.classification,
            days_past_due=suggestion.arrears.days_past_due,
            reason=text,
            decided_by=self.principal.user_id,
        )
        self.session.add(decision)
        previous = loan.classification
        loan.classification = chosen  # type: ignore[assignment]
        loan.updated_at = datetime.now(UTC)
        await self.session.flush()
        await refresh_summaries(self.session, [loan.customer_id])
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CLASSIFY,
            entity_type="loan",
            entity_id=str(loan.id),
            changes={
                "classification": {"from": previous, "to": chosen},
                "suggested": suggestion.classification,
                "days_past_due": suggestion.arrears.days_past_due,
                "reason": text,
            },
        )
        return decision

    async def decisions_for(self, loan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Classification]]:
        """Decisions on many loans' class in one query, newest first (scope checked on the loans)."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            self._scoped(select(Classification).join(Loan, Loan.id == Classification.loan_id))
            .where(Classification.loan_id.in_(loan_ids))
            .order_by(Classification.loan_id, Classification.id.desc())
        )
        found: dict[uuid.UUID, list[Classification]] = {loan_id: [] for loan_id in loan_ids}
        for row in rows:
            found[row.loan_id].append(row)
        return found

    async def classification_history(self, loan_id: str | uuid.UUID) -> list[Classification]:
        """Decisions on the loan's class, newest first."""
        loan = await self.get_loan(loan_id)
        return (await self.decisions_for([loan.id]))[loan.id]

    async def set_flags(self, loan_id: str | uuid.UUID, flags: Any) -> Loan:
        """Risk flags (restructured, litigation, ...) that classification rules may act on."""
        self.principal.require(LOANS_CLASSIFY)
        loan = await self.get_loan(loan_id, for_update=True)
        clean = validate_flags(flags)
        if set(clean) != set(loan.flags):
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="loan",
                entity_id=str(loan.id),
                changes=audit.diff({"flags": sorted(loan.flags)}, {"flags": sorted(clean)}),
            )
            loan.flags = clean
            loan.updated_at = datetime.now(UTC)
            await self.session.flush()
        return loan


def _overpayment(over: book.Overpayment, new: list[Repayment]) -> InvalidInput:
    """Which new repayment pays too much, or that it pushes an already recorded later one over."""
    index = next((i for i, repayment in enumerate(new) if repayment.id == over.payment_id), None)
    if index is None:
        return InvalidInput(
            [
                FieldError(
                    "paid_on",
                    "later_overpaid",
                    N_("A later repayment would then pay more than the loan needs; reverse it first."),
                )
            ]
        )
    return InvalidInput(
        [
            FieldError(
                "amount" if len(new) == 1 else f"repayments.{index}.amount",
                "overpayment",
                N_("More than the loan needs: at most {maximum} settles it on that date."),
                params={"maximum": f"{over.maximum:,}"},
            )
        ]
    )


def _rule_text(rule: book.Rule) -> str:
    condition = (
        f"dpd>={rule.min_days_past_due}" if rule.min_days_past_due is not None else f"flag={rule.flag}"
    )
    return f"{condition}:{rule.classification}"
