"""SegmentService: preview, count, page and break down filter trees; saved segments and their sharing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, not_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth import service as auth
from tenantcrm.auth.models import Team, User
from tenantcrm.auth.permissions import CUSTOMERS_READ, SEGMENTS_MANAGE, PermissionDenied, Principal
from tenantcrm.customers.inputs import strip_control
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import (
    CipherSource,
    CustomerFilter,
    CustomerOrder,
    CustomerPage,
    CustomerService,
    in_customer_scope,
)
from tenantcrm.loans.ledger import CLASSES
from tenantcrm.loans.models import Loan
from tenantcrm.loans.service import BUCKET_DAYS
from tenantcrm.messages import N_
from tenantcrm.segments.filter import (
    LIVE_LOANS,
    Node,
    compile_filter,
    fields_in,
    max_days_past_due_sql,
    parse_filter,
    to_raw,
)
from tenantcrm.segments.models import Segment
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

NAME_MAX = 100
DESCRIPTION_MAX = 1000
_PLANNED_PER_EXECUTION = "segments.plan_per_execution"  # session.info: the transaction it was set in
NONE = "none"  # the breakdown key of customers without a value (no grade, no live loan, ...)
# Field of a breakdown: a customer column, or what their loans say.
BREAKDOWNS = (
    "kind",
    "status",
    "regionCode",
    "riskLevel",
    "creditGrade",
    "classification",
    "arrearsBucket",
    "product",
    "ownerId",
)
_COLUMNS = {
    "kind": Customer.kind,
    "status": Customer.status,
    "regionCode": Customer.region_code,
    "riskLevel": Customer.risk_level,
    "creditGrade": Customer.credit_grade,
}


class SegmentNotFound(Exception):
    """No such segment, or one of someone else's that is not shared with this principal's team."""


@dataclass(frozen=True, slots=True)
class Slice:
    """One group of a breakdown: its key (a stored code, an owner id, or "none") and how many
    customers fall in it; `label` names an owner."""

    key: str
    count: int
    label: str | None = None


class SegmentService:
    """Previewing a filter needs customers.read; saving, changing and deleting segments needs
    segments.manage. Every count and page is within the viewer's record scope, and customers are
    always the masked rows the customer list shows."""

    def __init__(
        self, session: AsyncSession, principal: Principal, cipher: CipherSource | None = None
    ) -> None:
        self.session = session
        self.principal = principal
        self._cipher = cipher

    # --- previewing a filter ---

    def condition(self, filter_raw: object, as_of: date | None = None) -> ColumnElement[bool]:
        """The where-clause of a filter (validated; InvalidInput otherwise); one already compiled
        passes through."""
        if isinstance(filter_raw, ColumnElement):
            return filter_raw
        node = filter_raw if isinstance(filter_raw, Node) else parse_filter(filter_raw)
        today = date.today()
        day = as_of or today
        # The stored figures hold for today and later; an earlier day recomputes them from the loans.
        return compile_filter(node, day, stored=day >= today)

    async def _plan_per_execution(self) -> None:
        """Plan the transaction's statements for their values. A driver reuses prepared statements,
        and after five runs PostgreSQL may keep a generic plan, costed without the values: for a
        balance range it assumes a few thousand rows and probes customers one by one (1.5 s instead
        of 0.3 s at 1,000,000 customers). Planning each time costs about 2 ms. Set once per
        transaction (SET LOCAL ends with it)."""
        transaction = self.session.sync_session.get_transaction()
        if self.session.info.get(_PLANNED_PER_EXECUTION) is transaction:
            return
        await self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        self.session.info[_PLANNED_PER_EXECUTION] = transaction

    async def count(self, filter_raw: object, as_of: date | None = None) -> int:
        self.principal.require(CUSTOMERS_READ)
        where = self.condition(filter_raw, as_of)
        await self._plan_per_execution()
        statement = in_customer_scope(select(func.count()).select_from(Customer).where(where), self.principal)
        return int(await self.session.scalar(statement) or 0)

    async def customers(
        self,
        filter_raw: object,
        *,
        first: int | None = 25,
        after: str | None = None,
        as_of: date | None = None,
        order: CustomerOrder | None = None,
        with_total: bool = False,
    ) -> CustomerPage:
        """A page of the matching customers, as CustomerService pages its list (same cursors)."""
        self.principal.require(CUSTOMERS_READ)
        where = self.condition(filter_raw, as_of)
        await self._plan_per_execution()
        return await CustomerService(self.session, self.principal, self._cipher).list_customers(
            filter=CustomerFilter(condition=where),
            order=order,
            first=first,
            after=after,
            with_total=with_total,
        )

    async def breakdown(self, filter_raw: object, by: str, as_of: date | None = None) -> list[Slice]:
        """Matching customers grouped by one field, largest group first. Loan fields group each
        customer by its worst live loan (class, arrears bucket); by product a customer counts once
        per product it has a loan of, so those groups may add up to more than the segment."""
        self.principal.require(CUSTOMERS_READ)
        if by not in BREAKDOWNS:
            raise InvalidInput([FieldError("by", "invalid_choice", N_("Choose one of the listed values."))])
        day = as_of or date.today()
        where = self.condition(filter_raw, day)
        await self._plan_per_execution()
        if by == "product":
            return await self._by_product(where)
        labels: dict[str, str] = {}
        if by in _COLUMNS:
            key: Any = func.coalesce(_COLUMNS[by], NONE)
        elif by == "ownerId":
            key = func.coalesce(cast(Customer.owner_id, String), NONE)
        elif by == "classification":
            key = _worst_class()
        else:
            key = _worst_bucket(day)
        inner = in_customer_scope(select(key.label("key")).select_from(Customer).where(where), self.principal)
        grouped = inner.subquery()
        rows = (
            await self.session.execute(
                select(grouped.c.key, func.count())
                .group_by(grouped.c.key)
                .order_by(func.count().desc(), grouped.c.key)
            )
        ).all()
        if by == "ownerId":
            ids = [parse_uuid(k) for k, _ in rows if k != NONE]
            names = await self.session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
            labels = {str(user_id): name for user_id, name in names.all()}
        return [Slice(str(k), int(n), labels.get(str(k))) for k, n in rows]

    async def _by_product(self, where: ColumnElement[bool]) -> list[Slice]:
        scoped = in_customer_scope(
            select(Loan.product, func.count(func.distinct(Customer.id)))
            .select_from(Customer)
            .join(Loan, Loan.customer_id == Customer.id)
            .where(where)
            .group_by(Loan.product),
            self.principal,
        )
        rows = [(product, int(n)) for product, n in (await self.session.execute(scoped)).all()]
        without = await self.session.scalar(
            in_customer_scope(
                select(func.count())
                .select_from(Customer)
                .where(where, not_(select(Loan.id).where(Loan.customer_id == Customer.id).exists())),
                self.principal,
            )
        )
        if without:
            rows.append((NONE, int(without)))
        rows.sort(key=lambda row: (-row[1], row[0]))
        return [Slice(key, count) for key, count in rows]

    async def directory(self) -> tuple[list[tuple[uuid.UUID, str]], list[tuple[uuid.UUID, str]]]:
        """Active users and teams by name, for the owner and team conditions of the builder."""
        self.principal.require(CUSTOMERS_READ)
        users = await auth.active_users(self.session)
        teams = await self.session.execute(select(Team.id, Team.name).order_by(Team.name, Team.id))
        return users, [(team_id, name) for team_id, name in teams.all()]

    # --- saved segments ---

    def _visible(self) -> ColumnElement[bool]:
        mine = Segment.owner_id == self.principal.user_id
        if self.principal.team_id is None:
            return mine
        return or_(mine, and_(Segment.shared.is_(True), Segment.team_id == self.principal.team_id))

    async def list_segments(self) -> list[Segment]:
        """My segments and those shared with my team, by name."""
        self.principal.require(CUSTOMERS_READ)
        found = await self.session.scalars(
            select(Segment).where(self._visible()).order_by(Segment.name, Segment.id)
        )
        return list(found.all())

    async def get(self, segment_id: str | uuid.UUID) -> Segment:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(segment_id)
        segment = None
        if parsed is not None:
            segment = await self.session.scalar(select(Segment).where(Segment.id == parsed, self._visible()))
        if segment is None:
            raise SegmentNotFound
        return segment

    def can_edit(self, segment: Segment) -> bool:
        return self.principal.can(SEGMENTS_MANAGE) and segment.owner_id == self.principal.user_id

    def check_can_manage(self) -> None:
        self.principal.require(SEGMENTS_MANAGE)

    async def save(self, data: Mapping[str, Any]) -> Segment:
        """A new segment owned by the principal, shared with the principal's team when asked."""
        self.principal.require(SEGMENTS_MANAGE)
        values = _validate(data, partial=False)
        segment = Segment(
            id=uuid.uuid4(),
            owner_id=self.principal.user_id,
            team_id=self.principal.team_id,
            **values,
        )
        self.session.add(segment)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="segment",
            entity_id=str(segment.id),
            changes=_audited({}, values),
        )
        return segment

    async def update(self, segment_id: str | uuid.UUID, data: Mapping[str, Any]) -> Segment:
        self.principal.require(SEGMENTS_MANAGE)
        segment = await self._own(segment_id)
        values = _validate(data, partial=True)
        before = {name: getattr(segment, name) for name in values}
        for name, value in values.items():
            setattr(segment, name, value)
        segment.updated_at = datetime.now(UTC)
        if changes := _audited(before, values):
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="segment",
                entity_id=str(segment.id),
                changes=changes,
            )
        return segment

    async def delete(self, segment_id: str | uuid.UUID) -> None:
        self.principal.require(SEGMENTS_MANAGE)
        segment = await self._own(segment_id)
        await self.session.delete(segment)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.DELETE,
            entity_type="segment",
            entity_id=str(segment.id),
            changes={"name": segment.name},
        )

    async def _own(self, segment_id: str | uuid.UUID) -> Segment:
        """A segment to change: visible ones that are someone else's (shared) are read-only."""
        segment = await self.get(segment_id)
        if segment.owner_id != self.principal.user_id:
            raise PermissionDenied(SEGMENTS_MANAGE)
        return segment


def _worst_class() -> Any:
    rank = case({name: index for index, name in enumerate(CLASSES, start=1)}, value=Loan.classification)
    worst = (
        select(func.max(rank))
        .where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOANS))
        .correlate(Customer)
        .scalar_subquery()
    )
    return case(
        *((worst == index, name) for index, name in enumerate(CLASSES, start=1)),
        else_=NONE,
    )


def _worst_bucket(as_of: date) -> Any:
    has_live = select(Loan.id).where(Loan.customer_id == Customer.id, Loan.status.in_(LIVE_LOANS)).exists()
    days = max_days_past_due_sql(as_of)
    whens: list[Any] = [(not_(has_live), NONE)]
    for bucket, (_low, high) in BUCKET_DAYS.items():
        if high is not None:
            whens.append((days <= high, bucket))
    return case(*whens, else_=list(BUCKET_DAYS)[-1])


def _validate(data: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if not partial or "name" in data:
        name = " ".join(strip_control(str(data.get("name") or "")).split())
        if not 1 <= len(name) <= NAME_MAX:
            errors.append(FieldError("name", "required", N_("Give the segment a name (1-100 characters).")))
        values["name"] = name
    if not partial or "description" in data:
        description = strip_control(str(data.get("description") or "")).strip()
        if len(description) > DESCRIPTION_MAX:
            errors.append(FieldError("description", "too_long", N_("Too long (1,000 characters at most).")))
        values["description"] = description
    if not partial or "filter" in data:
        try:
            node = parse_filter(data.get("filter"))
            values["filter"] = to_raw(node)
        except InvalidInput as refused:
            errors.extend(refused.errors)
    if not partial or "shared" in data:
        values["shared"] = data.get("shared") in (True, "true", "on", "1", 1)
    if errors:
        raise InvalidInput(errors)
    return values


def _audited(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Name and sharing as they changed; the description is free text (only that it changed);
    the filter as the fields it uses."""

    def summary(values: Mapping[str, Any]) -> dict[str, Any]:
        shown = {key: value for key, value in values.items() if key != "filter"}
        if "filter" in values:
            shown["fields"] = fields_in([parse_filter(values["filter"])])
        return shown

    return audit.diff(summary(before), summary(after), redact=("description",))
