"""CustomerService: every read and write of customers, with its permission checks."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, CUSTOMERS_WRITE, PII_REVEAL, Principal
from tenantcrm.customers.identity import credit_code_problem, phone_problem, resident_id_problem
from tenantcrm.customers.inputs import PII_FIELDS, strip_control, validate_customer
from tenantcrm.customers.models import Customer, PiiAccess
from tenantcrm.json_sql import JsonField
from tenantcrm.messages import N_
from tenantcrm.pii.cipher import TenantCipher, version_of
from tenantcrm.pii.masking import (
    mask_address,
    mask_email,
    mask_national_id,
    mask_phone,
    normalize_national_id,
    normalize_phone,
)
from tenantcrm.tenancy import quotas
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

MAX_PAGE_SIZE = 100
DUPLICATE_IDENTITY = FieldError(
    "national_id", "duplicate", N_("A customer with this identity number already exists.")
)
INDEXED_PII = ("national_id", "phone")  # exact-match search and duplicate detection
MASKS = {
    "national_id": mask_national_id,
    "phone": mask_phone,
    "email": mask_email,
    "address": mask_address,
}
# Called with the key version a ciphertext needs, so a cipher cached before another process
# rotated the tenant's key is refreshed instead of failing.
CipherSource = Callable[[int | None], Awaitable[TenantCipher]]
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
    # A where-clause over Customer built by a service from validated input (a segment's filter);
    # the record scope still applies on top of it.
    condition: ColumnElement[bool] | None = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CustomerOrder:
    field: str = "created_at"
    descending: bool = True

    def __post_init__(self) -> None:
        if self.field not in SORT_FIELDS:
            raise ValueError(f"unknown sort field {self.field}")


class CursorEnds:
    """The first and last cursor of a keyset page whose rows' cursors are in `cursors`."""

    __slots__ = ()
    cursors: list[str]

    @property
    def start_cursor(self) -> str | None:
        return self.cursors[0] if self.cursors else None

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


@dataclass(slots=True)
class CustomerPage(CursorEnds):
    customers: list[Customer]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None


@dataclass(slots=True)
class CustomerJsonPage(CursorEnds):
    nodes: list[str]  # each customer's JSON object as text
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None


@dataclass(slots=True)
class _Walk:
    """Which way a keyset page goes from which cursor, and how many rows it shows."""

    size: int
    backwards: bool
    cursor: str | None
    more: bool = False

    @classmethod
    def of(cls, first: int | None, after: str | None, last: int | None, before: str | None) -> _Walk:
        backwards = last is not None or before is not None
        requested = last if backwards else first
        size = DEFAULT_PAGE_SIZE if requested is None else min(max(int(requested), 1), MAX_PAGE_SIZE)
        return cls(size, backwards, before if backwards else after)

    def page(self, rows: list[Any]) -> list[Any]:
        """The page's rows in the list's order, from the statement's (one row more than the page)."""
        self.more = len(rows) > self.size
        rows = rows[: self.size]
        if self.backwards:
            rows.reverse()
        return rows

    @property
    def has_next_page(self) -> bool:
        return self.more if not self.backwards else self.cursor is not None

    @property
    def has_previous_page(self) -> bool:
        return self.more if self.backwards else self.cursor is not None


def _sort_key(entity: Any, order_field: str) -> ColumnElement[Any]:
    if order_field == "monthly_income":
        # Matches the expression index; NULL incomes sort as lowest.
        return func.coalesce(entity.monthly_income, literal(-1))
    return getattr(entity, order_field)


# A cursor names only the ordering and the row's id: the sort value (a name, an income)
# is looked up again, so no personal data travels in cursors, URLs or logs. Other lists keyed by
# an id (complaints) use the same cursors with their own order (anything with a `field`).
def encode_cursor(row: Customer | Any, order: CustomerOrder | Any) -> str:
    # json.dumps([field, id]) written out: a field is a code identifier and an id a UUID, so
    # nothing needs escaping, and a page of 50 cursors costs a tenth (issue 8's profile).
    if not order.field.isidentifier():
        raise ValueError(f"sort field {order.field!r} is not an identifier")
    payload = f'["{order.field}","{row.id}"]'
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: CustomerOrder | Any) -> uuid.UUID:
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


def _pii_fingerprints(customer: Customer, fields: Mapping[str, Any]) -> dict[str, Any]:
    """What tells whether a PII field changed without decrypting it: the blind index where
    there is one, else the ciphertext (new on every write, so a submitted value counts as a
    change). Audit events record these fields as changed, never their values."""
    return {
        name: getattr(customer, f"{name}_bidx" if name in INDEXED_PII else f"{name}_enc") for name in fields
    }


# The audit chain is append-only, so what it holds outlives retention and erasure: it records that
# identifying fields changed, never their values (PII, and the name and birth date beside them).
AUDIT_REDACTED = (*PII_FIELDS, "name", "birth_date", "occupation", "industry")


def in_customer_scope(statement: Select[Any], principal: Principal) -> Select[Any]:
    """The principal's record scope over a statement that reads `Customer`: its own customers,
    its team's, or all of the tenant's. Every read and write of customers and of what hangs off
    them (collateral, loans, repayments) goes through this, so out of scope is simply not found."""
    if principal.record_scope == "all":
        return statement
    mine = Customer.owner_id == principal.user_id
    if principal.record_scope == "team" and principal.team_id is not None:
        return statement.where(or_(mine, Customer.team_id == principal.team_id))
    return statement.where(mine)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CustomerService:
    """Customers of the tenant whose unit of work `session` is, as seen by `principal`.

    `cipher` gives the tenant's PII cipher when asked; it is only asked for by writes of PII,
    searches by identity number or phone, and reveals, so reading never decrypts anything.
    """

    def __init__(
        self, session: AsyncSession, principal: Principal, cipher: CipherSource | None = None
    ) -> None:
        self.session = session
        self.principal = principal
        self._cipher_source = cipher

    async def _cipher(self, need_version: int | None = None) -> TenantCipher:
        if self._cipher_source is None:
            raise RuntimeError("this CustomerService was built without access to PII keys")
        return await self._cipher_source(need_version)

    def _in_scope(self, statement: Select[Any]) -> Select[Any]:
        return in_customer_scope(statement, self.principal)

    async def _filtered(self, statement: Select[Any], flt: CustomerFilter) -> Select[Any]:
        statement = self._in_scope(statement)
        if flt.search and (term := " ".join(strip_control(flt.search).split())):
            statement = statement.where(await self._search(term))
        if flt.risk_level:
            statement = statement.where(Customer.risk_level == flt.risk_level)
        if flt.status:
            statement = statement.where(Customer.status == flt.status)
        if flt.condition is not None:
            statement = statement.where(flt.condition)
        return statement

    async def _search(self, term: str) -> ColumnElement[bool]:
        """A name fragment, or, when the term is a whole identity number or phone, an exact
        match on its blind index (the clear value is never stored, so never searched)."""
        by_name = Customer.name.ilike(f"%{_escape_like(term)}%", escape="\\")
        identity, phone = normalize_national_id(term), normalize_phone(term)
        if not resident_id_problem(identity) or not credit_code_problem(identity):
            cipher = await self._cipher()
            return or_(by_name, Customer.national_id_bidx == cipher.blind_index("national_id", identity))
        if not phone_problem(phone):
            cipher = await self._cipher()
            return or_(by_name, Customer.phone_bidx == cipher.blind_index("phone", phone))
        return by_name

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
        flt, order = filter or CustomerFilter(), order or CustomerOrder()
        walk = _Walk.of(first, after, last, before)
        statement = select(Customer).options(joinedload(Customer.owner))
        rows = walk.page(
            list((await self.session.scalars(await self._page(statement, flt, order, walk))).all())
        )
        total = await self.count_customers(flt) if with_total else None
        return CustomerPage(
            customers=rows,
            cursors=[encode_cursor(c, order) for c in rows],
            has_next_page=walk.has_next_page,
            has_previous_page=walk.has_previous_page,
            total_count=total,
        )

    async def list_customers_json(
        self,
        fields: tuple[JsonField, ...],
        *,
        filter: CustomerFilter | None = None,
        order: CustomerOrder | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        with_total: bool = False,
        as_of: date,
    ) -> CustomerJsonPage:
        """list_customers with each customer's selected fields (the API's names, customer_json)
        as JSON text that PostgreSQL builds, the total beside the page: one statement (ADR 0015)."""
        from tenantcrm.customers.json_read import customer_json_sql  # it reaches loans, which import this

        flt, order = filter or CustomerFilter(), order or CustomerOrder()
        walk = _Walk.of(first, after, last, before)
        node = literal_column(f"({customer_json_sql(fields, as_of)})::text")
        columns: list[Any] = [Customer.id, node]
        if with_total:
            columns.append((await self._count_statement(flt)).correlate(None).scalar_subquery())
        statement = await self._page(select(*columns), flt, order, walk)
        connection = await self.session.connection()  # Core rows: no ORM layer for a statement of columns
        rows = walk.page(list((await connection.execute(statement)).all()))
        total = None
        if with_total:
            total = int(rows[0][2]) if rows else await self.count_customers(flt)
        return CustomerJsonPage(
            nodes=[row[1] for row in rows],
            cursors=[encode_cursor(row, order) for row in rows],
            has_next_page=walk.has_next_page,
            has_previous_page=walk.has_previous_page,
            total_count=total,
        )

    async def _page(
        self, statement: Select[Any], flt: CustomerFilter, order: CustomerOrder, walk: _Walk
    ) -> Select[Any]:
        """`statement` (over Customer) filtered, in scope, after or before the cursor, in order,
        limited to one more row than the page (which tells whether there is more)."""
        self.principal.require(CUSTOMERS_READ)
        key = _sort_key(Customer, order.field)
        # Walking backwards reads the reverse order, then flips the page.
        descending = order.descending != walk.backwards
        statement = await self._filtered(statement, flt)
        if walk.cursor:
            customer_id = decode_cursor(walk.cursor, order)
            anchor = aliased(Customer)
            anchor_key = select(_sort_key(anchor, order.field)).where(anchor.id == customer_id)
            position = tuple_(key, Customer.id)
            boundary = tuple_(anchor_key.scalar_subquery(), literal(customer_id))
            statement = statement.where(position < boundary if descending else position > boundary)
        return statement.order_by(
            key.desc() if descending else key.asc(),
            Customer.id.desc() if descending else Customer.id.asc(),
        ).limit(walk.size + 1)

    async def count_customers(self, filter: CustomerFilter | None = None) -> int:
        """How many customers match the filter, across all pages."""
        return int(await self.session.scalar(await self._count_statement(filter or CustomerFilter())) or 0)

    async def _count_statement(self, flt: CustomerFilter) -> Select[Any]:
        self.principal.require(CUSTOMERS_READ)
        return await self._filtered(select(func.count()).select_from(Customer), flt)

    async def get_customer(self, customer_id: str | uuid.UUID) -> Customer:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(customer_id)
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

    def check_can_write(self) -> None:
        """Refuse before a form is even shown to someone who could not save it."""
        self.principal.require(CUSTOMERS_WRITE)

    async def get_customer_for_edit(self, customer_id: str | uuid.UUID) -> Customer:
        self.principal.require(CUSTOMERS_WRITE)
        return await self.get_customer(customer_id)

    async def create_customer(self, data: Mapping[str, Any]) -> Customer:
        self.principal.require(CUSTOMERS_WRITE)
        values = validate_customer(data)
        await quotas.check_customers(self.session, self.principal.tenant)
        pii = {name: values.pop(name) for name in PII_FIELDS}
        customer = Customer(
            id=uuid.uuid4(), owner_id=self.principal.user_id, team_id=self.principal.team_id, **values
        )
        async with self._guarding_identity():
            await self._store_pii(customer, pii)
            self.session.add(customer)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="customer",
            entity_id=str(customer.id),
            changes=audit.diff({}, {**values, **pii}, redact=AUDIT_REDACTED),
        )
        return await self.get_customer(customer.id)

    async def update_customer(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Customer:
        self.principal.require(CUSTOMERS_WRITE)
        customer = await self.get_customer(customer_id)
        locked = (
            (customer.birth_date, customer.gender)
            if customer.kind == "individual" and customer.national_id_enc is not None
            else None
        )
        values = validate_customer(data, partial=True, current_kind=customer.kind, locked_facts=locked)
        pii = {name: values.pop(name) for name in PII_FIELDS if name in values}
        before = {name: getattr(customer, name) for name in values} | _pii_fingerprints(customer, pii)
        async with self._guarding_identity():
            for name, value in values.items():
                setattr(customer, name, value)
            await self._store_pii(customer, pii)
            customer.updated_at = datetime.now(UTC)
        after = values | _pii_fingerprints(customer, pii)
        if changes := audit.diff(before, after, redact=AUDIT_REDACTED):
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="customer",
                entity_id=str(customer.id),
                changes=changes,
            )
        return customer

    async def _store_pii(self, customer: Customer, pii: Mapping[str, str | None]) -> None:
        """Encrypt, mask and index the given PII fields onto the row (None clears a field)."""
        for name in pii:
            setattr(customer, f"{name}_enc", None)
            setattr(customer, f"{name}_masked", None)
            if name in INDEXED_PII:
                setattr(customer, f"{name}_bidx", None)
        present = {name: value for name, value in pii.items() if value is not None}
        if not present:
            return
        cipher = await self._cipher()
        for name, value in present.items():
            column = f"{name}_enc"
            setattr(customer, column, cipher.encrypt("customers", column, customer.id, value))
            setattr(customer, f"{name}_masked", MASKS[name](value))
            if name in INDEXED_PII:
                setattr(customer, f"{name}_bidx", cipher.blind_index(name, value))
        if "national_id" in present:
            await self._refuse_duplicate_identity(customer)
        # The oldest key version any field of the row may still use (rotation finds the row).
        current = customer.pii_key_version
        version = cipher.current_version
        customer.pii_key_version = version if current is None else min(current, version)

    @asynccontextmanager
    async def _guarding_identity(self) -> AsyncIterator[None]:
        """Make the block's changes inside a savepoint: a duplicate identity number that slipped
        past the check (two writers at once) is refused by the unique index, undone, and
        reported like the check would report it."""
        try:
            async with self.session.begin_nested():
                yield
                await self.session.flush()
        except IntegrityError as exc:
            if "customers_national_id_bidx" not in str(exc.orig):
                raise
            raise InvalidInput([DUPLICATE_IDENTITY]) from None

    async def _refuse_duplicate_identity(self, customer: Customer) -> None:
        # Tenant-wide, not scoped: the same person must not be entered twice by two officers.
        with self.session.no_autoflush:  # the row's own new index must not be flushed yet
            duplicate = await self.session.scalar(
                select(Customer.id)
                .where(Customer.national_id_bidx == customer.national_id_bidx, Customer.id != customer.id)
                .limit(1)
            )
        if duplicate is not None:
            raise InvalidInput([DUPLICATE_IDENTITY])

    async def reveal_pii(
        self, customer_id: str | uuid.UUID, fields: list[str], *, purpose: str, channel: str
    ) -> dict[str, str | None]:
        """Clear values of the asked fields, each access logged (who, whom, field, why) and audited."""
        self.principal.require(PII_REVEAL)
        purpose = " ".join(strip_control(purpose).split())
        if not 3 <= len(purpose) <= 500:
            raise InvalidInput(
                [FieldError("purpose", "required", N_("State why you need to see this (3-500 characters)."))]
            )
        if not fields or set(fields) - set(PII_FIELDS):
            raise InvalidInput(
                [FieldError("fields", "invalid_choice", N_("Choose one of the listed values."))]
            )
        customer = await self.get_customer(customer_id)
        wanted = [name for name in PII_FIELDS if name in fields]
        self.session.add_all(
            PiiAccess(
                user_id=self.principal.user_id,
                customer_id=customer.id,
                field=name,
                purpose=purpose,
                channel=channel,
            )
            for name in wanted
        )
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.REVEAL,
            entity_type="customer",
            entity_id=str(customer.id),
            # The purpose may name people: it stays in the PII access log, which retention can clear.
            changes={"fields": wanted, "purpose": audit.REDACTED, "channel": channel},
        )
        revealed: dict[str, str | None] = {}
        for name in wanted:
            blob = getattr(customer, f"{name}_enc")
            if blob is None:
                revealed[name] = None
                continue
            cipher = await self._cipher(need_version=version_of(blob))
            revealed[name] = cipher.decrypt("customers", f"{name}_enc", customer.id, blob)
        return revealed
