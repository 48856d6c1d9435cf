"""ContactService: log interactions, plan and tick off follow-ups, and each officer's day."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, CUSTOMERS_WRITE, Principal
from tenantcrm.auth.service import active_user_id
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.customers.inputs import choice_of, clean_text, limited_text, parse_date
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService, in_customer_scope
from tenantcrm.messages import N_
from tenantcrm.preferences.service import load_preferences
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

CHANNELS = ("phone", "visit", "wechat", "email", "meeting")
SUMMARY_MAX = 2000
NEXT_STEP_MAX = 500
NOTE_MAX = 500
PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
CLOCK_SKEW = timedelta(minutes=5)
UPCOMING_VISIT_DAYS = 7
FOLLOW_UP_SORTS = ("due_on", "customer")
CHOOSE = N_("Choose one of the listed values.")


class FollowUpNotFound(Exception):
    """No such follow-up on a customer this principal may see."""


@dataclass(frozen=True, slots=True)
class FollowUpRow:
    follow_up: FollowUp
    customer_name: str
    overdue_days: int


@dataclass(frozen=True, slots=True)
class UncontactedRow:
    customer: Customer
    days_since_contact: int
    interval_days: int


@dataclass(slots=True)
class MyDay:
    as_of: date
    overdue: list[FollowUpRow]
    due_today: list[FollowUpRow]
    visits: list[FollowUpRow]
    """Visits planned after today, within the week."""
    uncontacted: list[UncontactedRow]


def _channel(raw: Any, field: str, errors: list[FieldError]) -> str:
    return choice_of(raw, field, CHANNELS, errors)


def _due_date(raw: Any, field: str, errors: list[FieldError], *, not_before: date) -> date | None:
    try:
        due = parse_date(raw)
    except (ValueError, TypeError):
        errors.append(FieldError(field, "invalid_date", N_("Enter a date as YYYY-MM-DD.")))
        return None
    if not not_before <= due <= not_before + timedelta(days=3660):
        errors.append(
            FieldError(
                field, "invalid_due_date", N_("The follow-up date must be from today and within ten years.")
            )
        )
        return None
    return due


def validate_interaction(data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Time (default now, not in the future), channel, summary, next step, optional follow-up."""
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    raw_at = data.get("at")
    if raw_at in (None, ""):
        clean["at"] = now
    else:
        try:
            at = raw_at if isinstance(raw_at, datetime) else datetime.fromisoformat(clean_text(raw_at))
            if at.tzinfo is None:
                raise ValueError("naive")
            if at > now + CLOCK_SKEW or at < now - timedelta(days=3660):
                raise ValueError("out of range")
            clean["at"] = at
        except ValueError:
            errors.append(
                FieldError(
                    "at", "invalid_time", N_("Enter when it happened (not in the future), with a time zone.")
                )
            )
    clean["channel"] = _channel(data.get("channel"), "channel", errors)
    clean["summary"] = limited_text(data.get("summary"), "summary", SUMMARY_MAX, errors, required=True)
    clean["next_step"] = limited_text(data.get("next_step"), "next_step", NEXT_STEP_MAX, errors)
    if data.get("follow_up_on") not in (None, ""):
        clean["follow_up_on"] = _due_date(
            data.get("follow_up_on"), "follow_up_on", errors, not_before=now.date()
        )
        raw_channel = data.get("follow_up_channel") or clean.get("channel") or "phone"
        clean["follow_up_channel"] = _channel(raw_channel, "follow_up_channel", errors)
    if errors:
        raise InvalidInput(errors)
    return clean


class ContactService:
    """Logging a contact or planning one is customer work (customers.write on a customer in
    scope); reading needs customers.read. A follow-up is ticked off by its assignee or by anyone
    who may write the customer."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def _customer(self, customer_id: str | uuid.UUID) -> Customer:
        return await CustomerService(self.session, self.principal).get_customer(customer_id)

    async def log_interaction(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Interaction:
        """Record a contact; with a follow-up date, plan the next one for the author."""
        self.principal.require(CUSTOMERS_WRITE)
        customer = await self._customer(customer_id)
        now = datetime.now(UTC)
        values = validate_interaction(data, now)
        follow_up_on = values.pop("follow_up_on", None)
        follow_up_channel = values.pop("follow_up_channel", None)
        interaction = Interaction(
            id=uuid.uuid4(), customer_id=customer.id, author_id=self.principal.user_id, **values
        )
        self.session.add(interaction)
        if customer.last_contact_at is None or customer.last_contact_at < interaction.at:
            customer.last_contact_at = interaction.at
        await self.session.flush()
        if follow_up_on is not None:
            self.session.add(
                FollowUp(
                    id=uuid.uuid4(),
                    customer_id=customer.id,
                    interaction_id=interaction.id,
                    due_on=follow_up_on,
                    channel=follow_up_channel,
                    note=values["next_step"],
                    assignee_id=self.principal.user_id,
                    created_by=self.principal.user_id,
                )
            )
            await self.session.flush()
        # What was said stays out of the audit chain (it may hold personal details); that it happened
        # does not.
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="interaction",
            entity_id=str(interaction.id),
            changes={
                "customer_id": str(customer.id),
                "channel": interaction.channel,
                "at": interaction.at.isoformat(),
                "follow_up_on": follow_up_on.isoformat() if follow_up_on else None,
            },
        )
        return interaction

    async def plan_follow_up(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> FollowUp:
        """A follow-up or visit plan on a customer, for oneself or a colleague of the tenant."""
        self.principal.require(CUSTOMERS_WRITE)
        customer = await self._customer(customer_id)
        errors: list[FieldError] = []
        due_on = _due_date(data.get("due_on"), "due_on", errors, not_before=date.today())
        channel = _channel(data.get("channel") or "phone", "channel", errors)
        note = limited_text(data.get("note"), "note", NOTE_MAX, errors)
        assignee = self.principal.user_id
        if data.get("assignee_id") not in (None, ""):
            found = await active_user_id(self.session, data.get("assignee_id"))
            if found is None:
                errors.append(FieldError("assignee_id", "invalid_choice", CHOOSE))
            else:
                assignee = found
        if errors:
            raise InvalidInput(errors)
        follow_up = FollowUp(
            id=uuid.uuid4(),
            customer_id=customer.id,
            due_on=due_on,
            channel=channel,
            note=note,
            assignee_id=assignee,
            created_by=self.principal.user_id,
        )
        self.session.add(follow_up)
        await self.session.flush()
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="follow_up",
            entity_id=str(follow_up.id),
            changes={
                "customer_id": str(customer.id),
                "due_on": due_on.isoformat() if due_on else None,
                "channel": channel,
                "assignee_id": str(assignee),
            },
        )
        return follow_up

    async def complete_follow_up(self, follow_up_id: str | uuid.UUID) -> FollowUp:
        """Tick a follow-up off (doing it twice changes nothing)."""
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(follow_up_id)
        follow_up = (
            await self.session.scalar(
                in_customer_scope(
                    select(FollowUp)
                    .join(Customer, Customer.id == FollowUp.customer_id)
                    .where(FollowUp.id == parsed)
                    .with_for_update(of=FollowUp),
                    self.principal,
                )
            )
            if parsed
            else None
        )
        if follow_up is None:
            raise FollowUpNotFound
        if follow_up.assignee_id != self.principal.user_id:
            self.principal.require(CUSTOMERS_WRITE)
        if follow_up.done_at is None:
            follow_up.done_at = datetime.now(UTC)
            follow_up.done_by = self.principal.user_id
            await self.session.flush()
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="follow_up",
                entity_id=str(follow_up.id),
                changes={"done": {"from": False, "to": True}},
            )
        return follow_up

    async def interactions(
        self,
        customer_id: str | uuid.UUID,
        *,
        first: int = PAGE_SIZE,
        before: datetime | None = None,
        before_id: uuid.UUID | None = None,
    ) -> list[Interaction]:
        """A customer's interactions, newest first, a page at a time (before: the last one's time;
        with before_id, its id too, so two interactions at the same moment are not skipped)."""
        customer = await self._customer(customer_id)
        statement = select(Interaction).where(Interaction.customer_id == customer.id)
        if before is not None and before_id is not None:
            statement = statement.where(tuple_(Interaction.at, Interaction.id) < tuple_(before, before_id))
        elif before is not None:
            statement = statement.where(Interaction.at < before)
        rows = await self.session.scalars(
            # One more than a page may be asked for: it tells a caller whether another page follows.
            statement.order_by(Interaction.at.desc(), Interaction.id.desc()).limit(
                min(max(first, 1), MAX_PAGE_SIZE + 1)
            )
        )
        return list(rows)

    async def interactions_for_customers(
        self, customer_ids: Sequence[uuid.UUID], *, per_customer: int = PAGE_SIZE
    ) -> dict[uuid.UUID, list[Interaction]]:
        """The latest interactions of many customers in one query (GraphQL batches)."""
        self.principal.require(CUSTOMERS_READ)
        ranked = (
            in_customer_scope(
                select(
                    Interaction,
                    func.row_number()
                    .over(
                        partition_by=Interaction.customer_id,
                        order_by=(Interaction.at.desc(), Interaction.id.desc()),
                    )
                    .label("rank"),
                )
                .join(Customer, Customer.id == Interaction.customer_id)
                .where(Interaction.customer_id.in_(customer_ids)),
                self.principal,
            )
        ).subquery()
        latest = (
            select(Interaction)
            .join(ranked, ranked.c.id == Interaction.id)
            .where(ranked.c.rank <= per_customer)
        )
        found: dict[uuid.UUID, list[Interaction]] = {customer_id: [] for customer_id in customer_ids}
        for row in await self.session.scalars(latest.order_by(Interaction.at.desc(), Interaction.id.desc())):
            found[row.customer_id].append(row)
        return found

    async def follow_ups(self, customer_id: str | uuid.UUID, *, open_only: bool = False) -> list[FollowUp]:
        customer = await self._customer(customer_id)
        statement = select(FollowUp).where(FollowUp.customer_id == customer.id)
        if open_only:
            statement = statement.where(FollowUp.done_at.is_(None))
        return list(await self.session.scalars(statement.order_by(FollowUp.due_on, FollowUp.created_at)))

    async def follow_ups_for_customers(
        self, customer_ids: Sequence[uuid.UUID], *, open_only: bool = False
    ) -> dict[uuid.UUID, list[FollowUp]]:
        """The follow-ups of many customers in scope in one query (GraphQL batches), by due date."""
        self.principal.require(CUSTOMERS_READ)
        statement = in_customer_scope(
            select(FollowUp)
            .join(Customer, Customer.id == FollowUp.customer_id)
            .where(FollowUp.customer_id.in_(customer_ids)),
            self.principal,
        )
        if open_only:
            statement = statement.where(FollowUp.done_at.is_(None))
        found: dict[uuid.UUID, list[FollowUp]] = {customer_id: [] for customer_id in customer_ids}
        for row in await self.session.scalars(statement.order_by(FollowUp.due_on, FollowUp.created_at)):
            found[row.customer_id].append(row)
        return found

    async def my_day(
        self, as_of: date | None = None, *, sort: str = "due_on", descending: bool = False
    ) -> MyDay:
        """The principal's follow-ups due and overdue, visits planned this week, and own customers
        not contacted within the tenant's interval (shorter for key customers). The follow-ups come
        by due date or by customer name (FOLLOW_UP_SORTS), sorted by the database so that names
        collate as in the customer list; the rows are the same either way."""
        self.principal.require(CUSTOMERS_READ)
        if sort not in FOLLOW_UP_SORTS:
            raise ValueError(f"unknown follow-up order {sort}")
        keys = (
            (FollowUp.due_on, FollowUp.created_at, FollowUp.id)
            if sort == "due_on"
            else (Customer.name, FollowUp.due_on, FollowUp.id)
        )
        today = as_of or date.today()
        open_mine = in_customer_scope(
            select(FollowUp, Customer.name)
            .join(Customer, Customer.id == FollowUp.customer_id)
            .where(FollowUp.assignee_id == self.principal.user_id, FollowUp.done_at.is_(None)),
            self.principal,
        )
        rows = [
            FollowUpRow(follow_up, name, max((today - follow_up.due_on).days, 0))
            for follow_up, name in (
                await self.session.execute(
                    open_mine.where(FollowUp.due_on <= today + timedelta(days=UPCOMING_VISIT_DAYS)).order_by(
                        *(key.desc() if descending else key.asc() for key in keys)
                    )
                )
            ).all()
        ]
        return MyDay(
            as_of=today,
            overdue=[r for r in rows if r.follow_up.due_on < today],
            due_today=[r for r in rows if r.follow_up.due_on == today],
            visits=[r for r in rows if r.follow_up.due_on > today and r.follow_up.channel == "visit"],
            uncontacted=await self.uncontacted(as_of=today, owner_id=self.principal.user_id),
        )

    async def uncontacted(
        self, *, as_of: date | None = None, owner_id: uuid.UUID | None = None, limit: int = 50
    ) -> list[UncontactedRow]:
        """Live customers (prospects and active) in scope whose last contact, or creation when
        never contacted, is older than the tenant's interval; longest waiting first."""
        self.principal.require(CUSTOMERS_READ)
        preferences = await load_preferences(self.session)
        today = as_of or date.today()
        moment = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
        last = func.coalesce(Customer.last_contact_at, Customer.created_at)
        regular_cutoff = moment - timedelta(days=preferences.contact_interval_days)
        key_cutoff = moment - timedelta(days=preferences.key_contact_interval_days)
        statement = in_customer_scope(
            select(Customer, last)
            .options(joinedload(Customer.owner))
            .where(
                Customer.status.in_(("prospect", "active")),
                or_(
                    and_(Customer.key_customer.is_(True), last < key_cutoff),
                    and_(Customer.key_customer.is_(False), last < regular_cutoff),
                ),
            ),
            self.principal,
        )
        if owner_id is not None:
            statement = statement.where(Customer.owner_id == owner_id)
        rows = await self.session.execute(statement.order_by(last, Customer.id).limit(limit))
        return [
            UncontactedRow(
                customer,
                (today - contacted.astimezone(UTC).date()).days,
                preferences.key_contact_interval_days
                if customer.key_customer
                else preferences.contact_interval_days,
            )
            for customer, contacted in rows.all()
        ]
