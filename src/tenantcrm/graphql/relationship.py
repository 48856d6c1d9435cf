"""GraphQL of the relationship work: contacts and follow-ups, my day, complaints, the customer's
timeline."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from tenantcrm.complaints.models import Complaint as ComplaintRow
from tenantcrm.complaints.service import ComplaintNotFound, ComplaintService, complaint_cursor
from tenantcrm.contacts.models import FollowUp as FollowUpRow
from tenantcrm.contacts.models import Interaction as InteractionRow
from tenantcrm.contacts.service import ContactService, FollowUpNotFound
from tenantcrm.contacts.service import FollowUpRow as DueRow
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.graphql.common import (
    REFUSALS,
    PageInfo,
    check_page_size,
    input_values,
    optional_money,
    write_or_refuse,
)
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.customers import Customer
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError, PublicError
from tenantcrm.graphql.loans import LoanClassification, RepaymentChannel, RepaymentMethod
from tenantcrm.graphql.risk import RiskCaseStatus, RiskMeasureStatus, RiskTrigger
from tenantcrm.timeline.service import TimelineEntry as EntryRow
from tenantcrm.timeline.service import parse_before
from tenantcrm.validation import InvalidInput, parse_uuid

PAGE_SIZE = 20


@strawberry.enum
class ContactChannel(enum.Enum):
    PHONE = "phone"
    VISIT = "visit"
    WECHAT = "wechat"
    EMAIL = "email"
    MEETING = "meeting"


@strawberry.enum
class ComplaintKind(enum.Enum):
    COMPLAINT = "complaint"
    FEEDBACK = "feedback"


@strawberry.enum
class ComplaintCategory(enum.Enum):
    SERVICE = "service"
    FEES = "fees"
    INTEREST_RATE = "interest_rate"
    COLLECTION = "collection"
    PRODUCT = "product"
    PRIVACY = "privacy"
    OTHER = "other"


@strawberry.enum
class ComplaintStatus(enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


@strawberry.enum(description="What a timeline entry records.")
class TimelineKind(enum.Enum):
    INTERACTION = "interaction"
    LOAN_CREATED = "loan_created"
    REPAYMENT = "repayment"
    REPAYMENT_REVERSED = "repayment_reversed"
    CLASSIFICATION = "classification"
    COMPLAINT = "complaint"
    RISK_CASE_OPENED = "risk_case_opened"
    RISK_MEASURE = "risk_measure"
    RISK_CASE_CLOSED = "risk_case_closed"
    CUSTOMER_CHANGED = "customer_changed"


def _id(value: uuid.UUID | str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


# --- contacts ---


@strawberry.type(description="A contact with the customer: when, how, what was said, what comes next.")
class Interaction:
    id: strawberry.ID
    customer_id: strawberry.ID
    at: datetime.datetime
    channel: ContactChannel
    summary: str
    next_step: str
    author_id: strawberry.ID | None
    created_at: datetime.datetime

    @classmethod
    def from_row(cls, row: InteractionRow) -> Interaction:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            at=row.at,
            channel=ContactChannel(row.channel),
            summary=row.summary,
            next_step=row.next_step,
            author_id=_id(row.author_id),
            created_at=row.created_at,
        )


@strawberry.type
class InteractionEdge:
    cursor: str
    node: Interaction


@strawberry.type
class InteractionConnection:
    edges: list[InteractionEdge]
    page_info: PageInfo


@strawberry.type(description="A planned follow-up or visit on a customer.")
class FollowUp:
    id: strawberry.ID
    customer_id: strawberry.ID
    interaction_id: strawberry.ID | None = strawberry.field(
        description="The contact that planned it, if any."
    )
    due_on: datetime.date
    channel: ContactChannel
    note: str
    assignee_id: strawberry.ID | None
    created_at: datetime.datetime
    done: bool
    done_at: datetime.datetime | None

    @classmethod
    def from_row(cls, row: FollowUpRow) -> FollowUp:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            interaction_id=_id(row.interaction_id),
            due_on=row.due_on,
            channel=ContactChannel(row.channel),
            note=row.note,
            assignee_id=_id(row.assignee_id),
            created_at=row.created_at,
            done=row.done_at is not None,
            done_at=row.done_at,
        )


@strawberry.type(description="An open follow-up of the caller's, with its customer.")
class DayFollowUp:
    id: strawberry.ID
    customer_id: strawberry.ID
    customer_name: str
    due_on: datetime.date
    channel: ContactChannel
    note: str
    overdue_days: int

    @classmethod
    def from_row(cls, row: DueRow) -> DayFollowUp:
        return cls(
            id=strawberry.ID(str(row.follow_up.id)),
            customer_id=strawberry.ID(str(row.follow_up.customer_id)),
            customer_name=row.customer_name,
            due_on=row.follow_up.due_on,
            channel=ContactChannel(row.follow_up.channel),
            note=row.follow_up.note,
            overdue_days=row.overdue_days,
        )


@strawberry.type
class UncontactedCustomer:
    customer: Customer
    days_since_contact: int = strawberry.field(description="Since the last contact, or creation if none.")
    interval_days: int = strawberry.field(description="The tenant's interval for this customer.")


@strawberry.type(description="The caller's day: follow-ups due and overdue, visits ahead, customers waiting.")
class MyDay:
    as_of: datetime.date
    overdue: list[DayFollowUp]
    due_today: list[DayFollowUp]
    visits: list[DayFollowUp] = strawberry.field(description="Visits planned in the seven days after asOf.")
    uncontacted: list[UncontactedCustomer] = strawberry.field(
        description="The caller's own customers not contacted within the interval, longest waiting first."
    )


@strawberry.input
class LogInteractionInput:
    channel: ContactChannel
    summary: str
    at: datetime.datetime | None = strawberry.field(
        default=None, description="With a time zone; now when left out; not in the future."
    )
    next_step: str = ""
    follow_up_on: datetime.date | None = strawberry.field(
        default=None, description="Plans a follow-up for the caller on that day (from today)."
    )
    follow_up_channel: ContactChannel | None = strawberry.field(
        default=None, description="The follow-up's channel; this contact's when left out."
    )


@strawberry.input
class PlanFollowUpInput:
    due_on: datetime.date
    channel: ContactChannel = ContactChannel.PHONE
    note: str = ""
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None, description="The caller when left out."
    )


# --- complaints ---


@strawberry.type(description="A complaint or feedback, with its response target.")
class Complaint:
    id: strawberry.ID
    customer_id: strawberry.ID
    loan_id: strawberry.ID | None
    kind: ComplaintKind
    category: ComplaintCategory
    content: str
    status: ComplaintStatus
    resolution: str
    received_at: datetime.datetime
    respond_by: datetime.datetime = strawberry.field(description="The response target (tenant setting).")
    resolved_at: datetime.datetime | None
    assignee_id: strawberry.ID | None
    updated_at: datetime.datetime
    overdue: bool = strawberry.field(description="Past its response target and not resolved.")

    @classmethod
    def from_row(cls, row: ComplaintRow) -> Complaint:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            loan_id=_id(row.loan_id),
            kind=ComplaintKind(row.kind),
            category=ComplaintCategory(row.category),
            content=row.content,
            status=ComplaintStatus(row.status),
            resolution=row.resolution,
            received_at=row.received_at,
            respond_by=row.respond_by,
            resolved_at=row.resolved_at,
            assignee_id=_id(row.assignee_id),
            updated_at=row.updated_at,
            overdue=row.overdue(datetime.datetime.now(datetime.UTC)),
        )


@strawberry.type
class ComplaintEdge:
    cursor: str
    node: Complaint
    customer_name: str


@strawberry.type
class ComplaintConnection:
    edges: list[ComplaintEdge]
    page_info: PageInfo


@strawberry.input
class RecordComplaintInput:
    category: ComplaintCategory
    content: str
    kind: ComplaintKind = ComplaintKind.COMPLAINT
    loan_id: strawberry.ID | None = strawberry.field(default=None, description="A loan of the customer.")
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None, description="The caller when left out."
    )


@strawberry.input(description="Only the fields given are changed; RESOLVED needs a resolution.")
class UpdateComplaintInput:
    status: ComplaintStatus | None = strawberry.UNSET
    resolution: str | None = strawberry.UNSET
    assignee_id: strawberry.ID | None = strawberry.UNSET


# --- the timeline ---


@strawberry.type(
    description="One thing that happened to a customer. Only the fields of its kind are set; money in "
    "CNY with two decimals."
)
class TimelineEntry:
    at: datetime.datetime
    kind: TimelineKind
    ref_id: str = strawberry.field(description="Names the entry among the customer's; unique per kind.")
    channel: ContactChannel | None = None
    summary: str | None = None
    next_step: str | None = None
    loan_id: strawberry.ID | None = None
    product: str | None = None
    amount: decimal.Decimal | None = None
    method: RepaymentMethod | None = None
    paid_on: datetime.date | None = None
    repayment_channel: RepaymentChannel | None = None
    reason: str | None = None
    classification_from: LoanClassification | None = None
    classification_to: LoanClassification | None = None
    complaint_kind: ComplaintKind | None = None
    complaint_category: ComplaintCategory | None = None
    complaint_status: ComplaintStatus | None = None
    content: str | None = None
    case_id: strawberry.ID | None = None
    trigger: RiskTrigger | None = None
    description: str | None = None
    case_status: RiskCaseStatus | None = None
    outcome: str | None = None
    due_on: datetime.date | None = None
    measure_status: RiskMeasureStatus | None = None
    changed_fields: list[str] | None = strawberry.field(
        default=None, description="CUSTOMER_CHANGED: the names of the fields changed, never their values."
    )

    @classmethod
    def from_entry(cls, entry: EntryRow) -> TimelineEntry:
        data: dict[str, Any] = entry.data
        kind = TimelineKind(entry.kind)
        fields: dict[str, Any] = {}
        if kind == TimelineKind.INTERACTION:
            fields = {
                "channel": ContactChannel(data["channel"]),
                "summary": data["summary"],
                "next_step": data["next_step"],
            }
        elif kind in (
            TimelineKind.LOAN_CREATED,
            TimelineKind.REPAYMENT,
            TimelineKind.REPAYMENT_REVERSED,
            TimelineKind.CLASSIFICATION,
        ):
            fields = {
                "loan_id": _id(data["loan_id"]),
                "product": data["product"],
                "amount": optional_money(data.get("amount")),
                "method": RepaymentMethod(data["method"]) if "method" in data else None,
                "paid_on": data.get("paid_on"),
                "repayment_channel": RepaymentChannel(data["channel"]) if "channel" in data else None,
                "reason": data.get("reason"),
                "classification_from": LoanClassification(data["from"]) if data.get("from") else None,
                "classification_to": LoanClassification(data["to"]) if data.get("to") else None,
            }
        elif kind == TimelineKind.COMPLAINT:
            fields = {
                "complaint_kind": ComplaintKind(data["kind"]),
                "complaint_category": ComplaintCategory(data["category"]),
                "complaint_status": ComplaintStatus(data["status"]),
                "content": data["content"],
            }
        elif kind == TimelineKind.RISK_CASE_OPENED:
            fields = {
                "case_id": _id(data["case_id"]),
                "trigger": RiskTrigger(data["trigger"]),
                "description": data["description"],
            }
        elif kind == TimelineKind.RISK_CASE_CLOSED:
            fields = {
                "case_id": _id(data["case_id"]),
                "case_status": RiskCaseStatus(data["status"]),
                "outcome": data["outcome"],
            }
        elif kind == TimelineKind.RISK_MEASURE:
            fields = {
                "case_id": _id(data["case_id"]),
                "description": data["description"],
                "due_on": data["due_on"],
                "measure_status": RiskMeasureStatus(data["status"]),
            }
        elif kind == TimelineKind.CUSTOMER_CHANGED:
            fields = {"changed_fields": list(data["fields"])}
        return cls(at=entry.at, kind=kind, ref_id=entry.ref_id, **fields)


@strawberry.type(description="A page of the customer's timeline, newest first.")
class CustomerTimeline:
    entries: list[TimelineEntry]
    has_more: bool
    next_before: str | None = strawberry.field(description="Pass as `before` for the next (older) page.")


InteractionResult = Annotated[
    Interaction | InputError | NotFoundError | PermissionError, strawberry.union("InteractionResult")
]
FollowUpResult = Annotated[
    FollowUp | InputError | NotFoundError | PermissionError, strawberry.union("FollowUpResult")
]
ComplaintResult = Annotated[
    Complaint | InputError | NotFoundError | PermissionError, strawberry.union("ComplaintResult")
]


def _contacts(info: Info[GraphQLContext, None]) -> ContactService:
    return ContactService(info.context.session, info.context.principal)


def _complaints(info: Info[GraphQLContext, None]) -> ComplaintService:
    return ComplaintService(info.context.session, info.context.principal)


def _page_info(cursors: list[str], has_next: bool) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=False,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


# --- the customer's fields (Customer in customers.py calls these) ---


def _interaction_cursor(row: InteractionRow) -> str:
    return f"{row.at.isoformat()}|{row.id}"


def _parse_interaction_cursor(cursor: str) -> tuple[datetime.datetime, uuid.UUID]:
    at, _, ref = cursor.partition("|")
    interaction_id = parse_uuid(ref)
    try:
        moment = datetime.datetime.fromisoformat(at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or interaction_id is None:
        raise PublicError("after is not a cursor of this list")
    return moment, interaction_id


async def interactions_of(
    info: Info[GraphQLContext, None], customer_id: uuid.UUID, first: int | None, after: str | None
) -> InteractionConnection:
    check_page_size(first, "first")
    size = first or PAGE_SIZE
    if after is None:
        # The first page of many customers is one batch; a later page is one customer's.
        rows = await info.context.loaders.interactions_by_customer.load((customer_id, size + 1))
    else:
        before, before_id = _parse_interaction_cursor(after)
        service = _contacts(info)
        rows = await info.context.run(
            lambda: service.interactions(customer_id, first=size + 1, before=before, before_id=before_id)
        )
    edges = [InteractionEdge(cursor=_interaction_cursor(row), node=Interaction.from_row(row)) for row in rows]
    return InteractionConnection(
        edges=edges[:size], page_info=_page_info([e.cursor for e in edges[:size]], len(rows) > size)
    )


async def follow_ups_of(
    info: Info[GraphQLContext, None], customer_id: uuid.UUID, open_only: bool
) -> list[FollowUp]:
    rows = await info.context.loaders.follow_ups_by_customer.load((customer_id, open_only))
    return [FollowUp.from_row(row) for row in rows]


async def complaints_of(info: Info[GraphQLContext, None], customer_id: uuid.UUID) -> list[Complaint]:
    rows = await info.context.loaders.complaints_by_customer.load(customer_id)
    return [Complaint.from_row(row) for row in rows]


async def timeline_of(
    info: Info[GraphQLContext, None], customer_id: uuid.UUID, first: int | None, before: str | None
) -> CustomerTimeline:
    check_page_size(first, "first")
    if before is not None and parse_before(before) is None:
        raise PublicError("before is not a cursor of this timeline")
    page = await info.context.loaders.timeline.load((customer_id, first or PAGE_SIZE, before))
    return CustomerTimeline(
        entries=[TimelineEntry.from_entry(entry) for entry in page.entries],
        has_more=page.has_more,
        next_before=page.next_before,
    )


# --- root fields ---


@strawberry.type
class RelationshipQueries:
    @strawberry.field(description="The caller's follow-ups and customers waiting for contact.")
    async def my_day(self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None) -> MyDay:
        service = _contacts(info)
        day = await info.context.run(lambda: service.my_day(as_of))
        return MyDay(
            as_of=day.as_of,
            overdue=[DayFollowUp.from_row(row) for row in day.overdue],
            due_today=[DayFollowUp.from_row(row) for row in day.due_today],
            visits=[DayFollowUp.from_row(row) for row in day.visits],
            uncontacted=[
                UncontactedCustomer(
                    customer=Customer.from_row(row.customer),
                    days_since_contact=row.days_since_contact,
                    interval_days=row.interval_days,
                )
                for row in day.uncontacted
            ],
        )

    @strawberry.field(description="Complaints in scope, the most urgent first; resolved ones last.")
    async def complaints(
        self,
        info: Info[GraphQLContext, None],
        first: int | None = None,
        after: str | None = None,
        status: ComplaintStatus | None = None,
        overdue_only: bool = False,
    ) -> ComplaintConnection:
        check_page_size(first, "first")
        size = first or PAGE_SIZE
        service = _complaints(info)
        try:
            rows = await info.context.run(
                lambda: service.list_complaints(
                    status=status.value if status else None,
                    overdue_only=overdue_only,
                    limit=size + 1,
                    after=after,
                )
            )
        except InvalidInput:
            raise PublicError("after is not a cursor of this list") from None
        edges = [
            ComplaintEdge(
                cursor=complaint_cursor(row.complaint),
                node=Complaint.from_row(row.complaint),
                customer_name=row.customer_name,
            )
            for row in rows[:size]
        ]
        return ComplaintConnection(
            edges=edges, page_info=_page_info([e.cursor for e in edges], len(rows) > size)
        )

    @strawberry.field(description="One complaint, or null when there is none with this id in scope.")
    async def complaint(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> Complaint | None:
        service = _complaints(info)
        try:
            row = await info.context.run(lambda: service.get(str(id)))
        except ComplaintNotFound:
            return None
        return Complaint.from_row(row)


@strawberry.type
class RelationshipMutations:
    @strawberry.mutation(
        description="Record a contact; with followUpOn, plan the next one for the caller. "
        "Needs customers.write."
    )
    async def log_interaction(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: LogInteractionInput
    ) -> InteractionResult:
        service = _contacts(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.log_interaction(str(customer_id), input_values(input)),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        return result if isinstance(result, REFUSALS) else Interaction.from_row(result)

    @strawberry.mutation(
        description="Plan a follow-up or visit, for the caller or a colleague. Needs customers.write."
    )
    async def plan_follow_up(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: PlanFollowUpInput
    ) -> FollowUpResult:
        service = _contacts(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.plan_follow_up(str(customer_id), input_values(input)),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        return result if isinstance(result, REFUSALS) else FollowUp.from_row(result)

    @strawberry.mutation(
        description="Tick a follow-up off (again changes nothing): its assignee, or anyone with "
        "customers.write on the customer."
    )
    async def complete_follow_up(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> FollowUpResult:
        service = _contacts(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.complete_follow_up(str(id)),
            not_found=FollowUpNotFound,
            what="follow-up",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else FollowUp.from_row(result)

    @strawberry.mutation(
        description="Record a complaint or feedback; its response target follows the tenant's setting. "
        "Needs customers.write."
    )
    async def record_complaint(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: RecordComplaintInput
    ) -> ComplaintResult:
        service = _complaints(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.record(str(customer_id), input_values(input)),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        return result if isinstance(result, REFUSALS) else Complaint.from_row(result)

    @strawberry.mutation(description="Status, resolution and assignee of a complaint. Needs customers.write.")
    async def update_complaint(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: UpdateComplaintInput
    ) -> ComplaintResult:
        service = _complaints(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.update(str(id), input_values(input)),
            not_found=ComplaintNotFound,
            what="complaint",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else Complaint.from_row(result)
