"""CustomerService: every read and write of customers, with its permission checks."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, CUSTOMERS_WRITE, Principal
from tenantcrm.customers.inputs import strip_control, validate_customer
from tenantcrm.customers.models import Customer

MAX_PAGE_SIZE = 100
PII_FIELDS = ("national_id", "phone", "email", "address")  # audited as changed, never by value
DEFAULT_PAGE_SIZE = 25
SORT_FIELDS = ("created_at", "name", "monthly_income")


class CustomerNotFound(Exception):
    """No such customer in this tenant (the same for a random id and another tenant's)."""


class InvalidCursor(Exception):
    """A pagination cursor that was not issued for this ordering."""


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    search: str | None = None
    risk_level: str | None = None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerOrder:
    field: str = "created_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.field not in SORT_FIELDS:
            raise ValueError(f"unknown sort field {self.field}")


@dataclass(slots=True)
class CustomerPage:
    customers: list[Customer]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None
    order: CustomerOrder = field(default_factory=CustomerOrder)

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def _sort_key(entity: Any, order_field: str) -> ColumnElement[Any]:
    if order_field == "monthly_income":
        # Matches the expression index; NULL incomes sort as lowest.
        return func.coalesce(entity.monthly_income, literal(-1))
    return getattr(entity, order_field)


# A cursor names only the ordering and the row's id: the sort value (a name, an income)
# is looked up again, so no personal data travels in cursors, URLs or logs.
def encode_cursor(customer: Customer, order: CustomerOrder) -> str:
    payload = json.dumps([order.field, str(customer.id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: CustomerOrder) -> uuid.UUID:
    if len(cursor) > 200:  # ours are under 80 characters; refuse before parsing anything big
        raise InvalidCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        order_field, customer_id = json.loads(raw)
        if order_field != order.field:
            raise ValueError("cursor of another ordering")
        return uuid.UUID(customer_id)
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def parse_customer_id(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CustomerService:
    """Customers of the tenant whose unit of work `session` is, as seen by `principal`."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _in_scope(self, statement: Select[Any]) -> Select[Any]:
        """The principal's record scope: its own customers, its team's, or all of the tenant's.
        Every read and write goes through this, so an out-of-scope customer is simply not found."""
        principal = self.principal
        if principal.record_scope == "all":
            return statement
        mine = Customer.owner_id == principal.user_id
        if principal.record_scope == "team" and principal.team_id is not None:
            return statement.where(or_(mine, Customer.team_id == principal.team_id))
        return statement.where(mine)

    def _filtered(self, statement: Select[Any], flt: CustomerFilter) -> Select[Any]:
        statement = self._in_scope(statement)
        if flt.search and (term := " ".join(strip_control(flt.search).split())):
            statement = statement.where(Customer.name.ilike(f"%{_escape_like(term)}%", escape="\\"))
        if flt.risk_level:
            statement = statement.where(Customer.risk_level == flt.risk_level)
        if flt.status:
            statement = statement.where(Customer.status == flt.status)
        return statement

    async def list_customers(
        self,
        *,
        filter: CustomerFilter | None = None,
        order: CustomerOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        with_total: bool = True,
    ) -> CustomerPage:
        """One page of customers by keyset pagination (forward with first/after, back with
        last/before), plus the total matching the filter when asked."""
        self.principal.require(CUSTOMERS_READ)
        flt = filter or CustomerFilter()
        order = order or CustomerOrder()
        backwards = last is not None or before is not None
        requested = last if backwards else first
        size = DEFAULT_PAGE_SIZE if requested is None else min(max(int(requested), 1), MAX_PAGE_SIZE)
        key = _sort_key(Customer, order.field)
        # Walking backwards reads the reverse order, then flips the page.
        descending = order.descending != backwards
        statement = self._filtered(select(Customer).options(joinedload(Customer.owner)), flt)
        cursor = before if backwards else after
        if cursor:
            customer_id = decode_cursor(cursor, order)
            anchor = aliased(Customer)
            anchor_key = select(_sort_key(anchor, order.field)).where(anchor.id == customer_id)
            position = tuple_(key, Customer.id)
            boundary = tuple_(anchor_key.scalar_subquery(), literal(customer_id))
            statement = statement.where(position < boundary if descending else position > boundary)
        statement = statement.order_by(
            key.desc() if descending else key.asc(),
            Customer.id.desc() if descending else Customer.id.asc(),
        ).limit(size + 1)
        rows = list((await self.session.scalars(statement)).all())
        more = len(rows) > size
        rows = rows[:size]
        if backwards:
            rows.reverse()
        total = await self.count_customers(flt) if with_total else None
        return CustomerPage(
            customers=rows,
            cursors=[encode_cursor(c, order) for c in rows],
            has_next_page=more if not backwards else cursor is not None,
            has_previous_page=more if backwards else cursor is not None,
            total_count=total,
            order=order,
        )

    async def count_customers(self, filter: CustomerFilter | None = None) -> int:
        """How many customers match the filter, across all pages."""
        self.principal.require(CUSTOMERS_READ)
        statement = self._filtered(select(func.count()).select_from(Customer), filter or CustomerFilter())
        return int(await self.session.scalar(statement) or 0)

    async def get_customer(self, customer_id: str | uuid.UUID) -> Customer:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_customer_id(customer_id)
        customer = None
        if parsed is not None:
            customer = await self.session.scalar(
                self._in_scope(
                    select(Customer).options(joinedload(Customer.owner)).where(Customer.id == parsed)
                )
            )
        if customer is None:
            raise CustomerNotFound
        return customer

    async def create_customer(self, data: Mapping[str, Any]) -> Customer:
        self.principal.require(CUSTOMERS_WRITE)
        values = validate_customer(data)
        customer = Customer(
            id=uuid.uuid4(), owner_id=self.principal.user_id, team_id=self.principal.team_id, **values
        )
        self.session.add(customer)
        await self.session.flush()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="customer",
            entity_id=str(customer.id),
            changes=audit.diff({}, values, redact=PII_FIELDS),
        )
        return await self.get_customer(customer.id)

    async def update_customer(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Customer:
        self.principal.require(CUSTOMERS_WRITE)
        customer = await self.get_customer(customer_id)
        values = validate_customer(data, partial=True)
        before = {name: getattr(customer, name) for name in values}
        for name, value in values.items():
            setattr(customer, name, value)
        customer.updated_at = datetime.now(UTC)
        await self.session.flush()
        if changes := audit.diff(before, values, redact=PII_FIELDS):
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="customer",
                entity_id=str(customer.id),
                changes=changes,
            )
        return customer
