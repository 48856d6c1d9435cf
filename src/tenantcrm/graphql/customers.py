"""GraphQL types, queries and mutations of customers: parse, call CustomerService, return."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField, Selection

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer as CustomerRow
from tenantcrm.customers.regions import region_name
from tenantcrm.customers.service import (
    CustomerFilter,
    CustomerNotFound,
    CustomerOrder,
    CustomerPage,
    CustomerService,
)
from tenantcrm.graphql.collateral import Collateral
from tenantcrm.graphql.common import PageInfo, check_page_size, input_values
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import (
    FieldError,
    InputError,
    NotFoundError,
    PermissionError,
    QuotaExceededError,
)
from tenantcrm.graphql.loans import Loan
from tenantcrm.loans.next_due_service import next_installments_for
from tenantcrm.loans.service import LoanService
from tenantcrm.tenancy.quotas import QuotaExceeded
from tenantcrm.validation import InvalidInput

if TYPE_CHECKING:
    from tenantcrm.graphql.relationship import Complaint, CustomerTimeline, FollowUp, InteractionConnection
    from tenantcrm.graphql.risk import EarlyWarning, RiskCase


@strawberry.enum
class CustomerKind(enum.Enum):
    INDIVIDUAL = "individual"
    ENTERPRISE = "enterprise"


@strawberry.enum
class RiskLevel(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum
class CustomerStatus(enum.Enum):
    PROSPECT = "prospect"
    ACTIVE = "active"
    SETTLED = "settled"
    CLOSED = "closed"


@strawberry.enum
class Gender(enum.Enum):
    MALE = "male"
    FEMALE = "female"


@strawberry.enum
class MaritalStatus(enum.Enum):
    SINGLE = "single"
    MARRIED = "married"
    DIVORCED = "divorced"
    WIDOWED = "widowed"


@strawberry.enum(description="Credit grade, best (AAA) to worst (D).")
class CreditGrade(enum.Enum):
    AAA = "AAA"
    AA = "AA"
    A = "A"
    BBB = "BBB"
    BB = "BB"
    B = "B"
    CCC = "CCC"
    CC = "CC"
    C = "C"
    D = "D"


@strawberry.enum(description="How the customer came to the institution.")
class CustomerSource(enum.Enum):
    WALK_IN = "walk_in"
    REFERRAL = "referral"
    ONLINE = "online"
    PARTNER = "partner"
    MARKETING = "marketing"
    IMPORT = "import"
    OTHER = "other"


@strawberry.enum
class CustomerOrderField(enum.Enum):
    CREATED_AT = "created_at"
    NAME = "name"
    MONTHLY_INCOME = "monthly_income"


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.type
class UserRef:
    id: strawberry.ID
    display_name: str


@strawberry.type(description="An individual or enterprise borrower of the institution.")
class Customer:
    id: strawberry.ID
    kind: CustomerKind
    name: str
    region_code: str | None
    region_name: str | None
    monthly_income: decimal.Decimal | None = strawberry.field(
        description="Monthly income in CNY, two decimals."
    )
    gender: Gender | None = strawberry.field(description="Individuals only; from the resident ID if any.")
    birth_date: datetime.date | None = strawberry.field(
        description="Individuals only; from the resident ID if any."
    )
    marital_status: MaritalStatus | None
    occupation: str | None
    industry: str | None
    assets: decimal.Decimal | None = strawberry.field(description="Total assets in CNY, two decimals.")
    liabilities: decimal.Decimal | None = strawberry.field(
        description="Total liabilities in CNY, two decimals."
    )
    debt_to_income: decimal.Decimal | None = strawberry.field(
        description="Liabilities over a year's income, a ratio with four decimals (0.3500 is 35%); null "
        "unless both are known."
    )
    credit_score: int | None = strawberry.field(description="0 to 1000.")
    credit_grade: CreditGrade | None
    tags: list[str]
    source: CustomerSource | None
    legal_hold: bool = strawberry.field(description="Exempt from retention deletion while set.")
    risk_level: RiskLevel
    status: CustomerStatus
    national_id: str | None = strawberry.field(
        description="Resident ID or unified social credit code, masked. Clear: revealCustomerPii."
    )
    phone: str | None = strawberry.field(description="Masked. Clear: revealCustomerPii.")
    email: str | None = strawberry.field(description="Masked. Clear: revealCustomerPii.")
    address: str | None = strawberry.field(description="Masked. Clear: revealCustomerPii.")
    owner: UserRef | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    # Set when the customer list read the page's loans at once (prefetch_loans).
    loans_read: strawberry.Private[list[Loan] | None] = None

    @classmethod
    def from_row(cls, row: CustomerRow) -> Customer:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=CustomerKind(row.kind),
            name=row.name,
            region_code=row.region_code,
            region_name=region_name(row.region_code) or None,
            monthly_income=row.monthly_income,
            gender=Gender(row.gender) if row.gender else None,
            birth_date=row.birth_date,
            marital_status=MaritalStatus(row.marital_status) if row.marital_status else None,
            occupation=row.occupation,
            industry=row.industry,
            assets=row.assets,
            liabilities=row.liabilities,
            debt_to_income=row.debt_to_income,
            credit_score=row.credit_score,
            credit_grade=CreditGrade(row.credit_grade) if row.credit_grade else None,
            tags=list(row.tags or []),
            source=CustomerSource(row.source) if row.source else None,
            legal_hold=bool(row.legal_hold),
            risk_level=RiskLevel(row.risk_level),
            status=CustomerStatus(row.status),
            national_id=row.national_id_masked,
            phone=row.phone_masked,
            email=row.email_masked,
            address=row.address_masked,
            owner=UserRef(id=strawberry.ID(str(row.owner.id)), display_name=row.owner.display_name)
            if row.owner
            else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Collateral pledged by the customer, oldest first.")
    async def collateral(self, info: Info[GraphQLContext, None]) -> list[Collateral]:
        rows = await info.context.loaders.collateral_by_customer.load(uuid.UUID(self.id))
        return [Collateral.from_row(row) for row in rows]

    @strawberry.field(description="The customer's loans, oldest first.")
    def loans(self, info: Info[GraphQLContext, None]) -> list[Loan]:
        # Sync when the list read them already (a sync field costs a fraction of an async one);
        # otherwise the loader's coroutine, which graphql-core awaits like an async resolver's.
        if self.loans_read is not None:
            return self.loans_read
        return self._load_loans(info)  # type: ignore[return-value]

    async def _load_loans(self, info: Info[GraphQLContext, None]) -> list[Loan]:
        rows = await info.context.loaders.loans_by_customer.load(uuid.UUID(self.id))
        return [Loan.from_row(row) for row in rows]

    # The relationship work: its types live in relationship.py and risk.py, which import this
    # module, so they are named lazily here and the resolvers imported when first called.

    @strawberry.field(description="Contacts with the customer, newest first.")
    async def interactions(
        self, info: Info[GraphQLContext, None], first: int | None = None, after: str | None = None
    ) -> Annotated[InteractionConnection, strawberry.lazy("tenantcrm.graphql.relationship")]:
        from tenantcrm.graphql.relationship import interactions_of

        return await interactions_of(info, uuid.UUID(self.id), first, after)

    @strawberry.field(description="Follow-ups and visits planned, by due date.")
    async def follow_ups(
        self, info: Info[GraphQLContext, None], open_only: bool = False
    ) -> list[Annotated[FollowUp, strawberry.lazy("tenantcrm.graphql.relationship")]]:
        from tenantcrm.graphql.relationship import follow_ups_of

        return await follow_ups_of(info, uuid.UUID(self.id), open_only)

    @strawberry.field(description="Complaints and feedback, newest first.")
    async def complaints(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[Complaint, strawberry.lazy("tenantcrm.graphql.relationship")]]:
        from tenantcrm.graphql.relationship import complaints_of

        return await complaints_of(info, uuid.UUID(self.id))

    @strawberry.field(description="Risk cases, newest first.")
    async def risk_cases(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[RiskCase, strawberry.lazy("tenantcrm.graphql.risk")]]:
        from tenantcrm.graphql.risk import risk_cases_of

        return await risk_cases_of(info, uuid.UUID(self.id))

    @strawberry.field(description="Live early-warning flags.")
    async def warnings(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[EarlyWarning, strawberry.lazy("tenantcrm.graphql.risk")]]:
        from tenantcrm.graphql.risk import warnings_of

        return await warnings_of(info, uuid.UUID(self.id))

    @strawberry.field(
        description="Everything that happened to the customer, newest first; pass nextBefore as before "
        "for older entries."
    )
    async def timeline(
        self, info: Info[GraphQLContext, None], first: int | None = None, before: str | None = None
    ) -> Annotated[CustomerTimeline, strawberry.lazy("tenantcrm.graphql.relationship")]:
        from tenantcrm.graphql.relationship import timeline_of

        return await timeline_of(info, uuid.UUID(self.id), first, before)


@strawberry.type
class CustomerEdge:
    cursor: str
    node: Customer


@strawberry.type
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo
    count_filter: strawberry.Private[CustomerFilter]

    @classmethod
    def from_page(cls, page: CustomerPage, count_filter: CustomerFilter) -> CustomerConnection:
        """A page of CustomerService (the customer list's or a segment's) as a connection."""
        return cls(
            edges=[
                CustomerEdge(cursor=cursor, node=Customer.from_row(row))
                for row, cursor in zip(page.customers, page.cursors, strict=True)
            ],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            count_filter=count_filter,
        )

    @strawberry.field(description="Customers matching the filter across all pages.")
    async def total_count(self, info: Info[GraphQLContext, None]) -> int:
        # A resolver of its own, so the count query runs only when a client asks for it.
        ctx = info.context
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        return await ctx.run(lambda: service.count_customers(self.count_filter))


@strawberry.input
class CustomerFilterInput:
    search: str | None = strawberry.field(default=None, description="Part of the name.")
    risk_level: RiskLevel | None = None
    status: CustomerStatus | None = None


@strawberry.input
class CustomerOrderInput:
    field: CustomerOrderField = CustomerOrderField.CREATED_AT
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class CreateCustomerInput:
    kind: CustomerKind
    name: str
    region_code: str | None = None
    monthly_income: decimal.Decimal | None = None
    gender: Gender | None = None
    birth_date: datetime.date | None = None
    marital_status: MaritalStatus | None = None
    occupation: str | None = None
    industry: str | None = None
    assets: decimal.Decimal | None = None
    liabilities: decimal.Decimal | None = None
    credit_score: int | None = None
    credit_grade: CreditGrade | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    source: CustomerSource | None = None
    risk_level: RiskLevel = RiskLevel.LOW
    status: CustomerStatus = CustomerStatus.PROSPECT
    national_id: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None


@strawberry.input(description="Only the fields given are changed.")
class UpdateCustomerInput:
    kind: CustomerKind | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    region_code: str | None = strawberry.UNSET
    monthly_income: decimal.Decimal | None = strawberry.UNSET
    gender: Gender | None = strawberry.UNSET
    birth_date: datetime.date | None = strawberry.UNSET
    marital_status: MaritalStatus | None = strawberry.UNSET
    occupation: str | None = strawberry.UNSET
    industry: str | None = strawberry.UNSET
    assets: decimal.Decimal | None = strawberry.UNSET
    liabilities: decimal.Decimal | None = strawberry.UNSET
    credit_score: int | None = strawberry.UNSET
    credit_grade: CreditGrade | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    source: CustomerSource | None = strawberry.UNSET
    risk_level: RiskLevel | None = strawberry.UNSET
    status: CustomerStatus | None = strawberry.UNSET
    national_id: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET


CreateCustomerResult = Annotated[
    Customer | InputError | PermissionError | QuotaExceededError, strawberry.union("CreateCustomerResult")
]


@strawberry.type(description="Clear PII values, each read written to the PII access log.")
class RevealedPii:
    customer_id: strawberry.ID
    national_id: str | None
    phone: str | None
    email: str | None
    address: str | None


RevealCustomerPiiResult = Annotated[
    RevealedPii | InputError | NotFoundError | PermissionError,
    strawberry.union("RevealCustomerPiiResult"),
]
PII_FIELD_NAMES = {"nationalId": "national_id", "phone": "phone", "email": "email", "address": "address"}

UpdateCustomerResult = Annotated[
    Customer | InputError | NotFoundError | PermissionError,
    strawberry.union("UpdateCustomerResult"),
]


def _selected(selections: list[Selection], name: str) -> list[Selection]:
    """What is selected under every field `name` among `selections`, fragments looked through."""
    found: list[Selection] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name:
                found.extend(selection.selections)
        else:
            found.extend(_selected(selection.selections, name))
    return found


async def prefetch_loans(info: Info[GraphQLContext, None], customers: list[Customer]) -> None:
    """When the operation asks for the page's loans (and their next instalments), read them for the
    whole page now, one statement each, so that those fields resolve synchronously: with 50
    customers and their loans, async fields and their loaders were two thirds of the list's
    time (issue 8's bench, bench/graphql_list.py)."""
    edges = _selected(info.selected_fields, info.field_name)
    loans = _selected(_selected(_selected(edges, "edges"), "node"), "loans")
    if not loans or not customers:
        return
    ctx = info.context
    service = LoanService(ctx.session, ctx.principal)
    rows = await ctx.run(lambda: service.loans_for_customers([uuid.UUID(c.id) for c in customers]))
    for customer in customers:
        customer.loans_read = [Loan.from_row(row) for row in rows[uuid.UUID(customer.id)]]
    if _selected(loans, "nextInstallment"):
        page_loans = [loan for customer in customers for loan in customer.loans_read or []]
        today = datetime.date.today()
        due = await ctx.run(
            lambda: next_installments_for(
                ctx.session, ctx.principal, [loan.row for loan in page_loans], today
            )
        )
        for loan in page_loans:
            loan.next_due, loan.next_due_read = due[loan.row.id], True


def list_arguments(
    filter: CustomerFilterInput | None, order_by: CustomerOrderInput | None
) -> tuple[CustomerFilter, CustomerOrder]:
    """The service's filter and order for the `customers` field's arguments (its resolver's and
    compiled reads')."""
    flt, order = filter or CustomerFilterInput(), order_by or CustomerOrderInput()
    return (
        CustomerFilter(
            search=flt.search,
            risk_level=flt.risk_level.value if flt.risk_level else None,
            status=flt.status.value if flt.status else None,
        ),
        CustomerOrder(order.field.value, order.direction == OrderDirection.DESC),
    )


@strawberry.type
class CustomerQueries:
    @strawberry.field(description="Customers of the caller's institution, newest first by default.")
    async def customers(
        self,
        info: Info[GraphQLContext, None],
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: CustomerFilterInput | None = None,
        order_by: CustomerOrderInput | None = None,
    ) -> CustomerConnection:
        check_page_size(first, "first")
        check_page_size(last, "last")
        ctx = info.context
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        service_filter, service_order = list_arguments(filter, order_by)
        page = await ctx.run(
            lambda: service.list_customers(
                filter=service_filter,
                order=service_order,
                first=first,
                after=after,
                last=last,
                before=before,
                with_total=False,
            )
        )
        connection = CustomerConnection.from_page(page, service_filter)
        await prefetch_loans(info, [edge.node for edge in connection.edges])
        return connection

    @strawberry.field(description="One customer, or null when there is none with this id.")
    async def customer(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> Customer | None:
        ctx = info.context
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        try:
            row = await ctx.run(lambda: service.get_customer(str(id)))
        except CustomerNotFound:
            return None
        return Customer.from_row(row)


@strawberry.type
class CustomerMutations:
    @strawberry.mutation
    async def create_customer(
        self, info: Info[GraphQLContext, None], input: CreateCustomerInput
    ) -> CreateCustomerResult:
        ctx = info.context
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        try:
            row = await ctx.write(lambda: service.create_customer(input_values(input)))
        except QuotaExceeded as exceeded:
            return QuotaExceededError.from_exceeded(exceeded)
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Customer.from_row(row)

    @strawberry.mutation
    async def update_customer(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: UpdateCustomerInput
    ) -> UpdateCustomerResult:
        ctx = info.context
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        try:
            row = await ctx.write(lambda: service.update_customer(str(id), input_values(input)))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CustomerNotFound:
            return NotFoundError(message="customer not found", id=id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Customer.from_row(row)

    @strawberry.mutation(
        description="Clear values of the asked fields (nationalId, phone, email, address); needs "
        "pii.reveal and a stated purpose, and writes the PII access log."
    )
    async def reveal_customer_pii(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, fields: list[str], purpose: str
    ) -> RevealCustomerPiiResult:
        ctx = info.context
        if len(info.operation.selection_set.selections) != 1:
            # Any other error in the operation would roll back the access log while the
            # clear values still went out: a reveal stands alone.
            return InputError(
                message="revealCustomerPii must be the only field of its operation; nothing was revealed.",
                fields=[
                    FieldError(field="customerId", code="not_alone", message="Send the reveal on its own.")
                ],
            )
        service = CustomerService(ctx.session, ctx.principal, ctx.cipher)
        names = [PII_FIELD_NAMES.get(name, name) for name in fields]
        try:
            values = await ctx.run(
                lambda: service.reveal_pii(str(customer_id), names, purpose=purpose, channel="api")
            )
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CustomerNotFound:
            return NotFoundError(message="customer not found", id=customer_id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return RevealedPii(
            customer_id=customer_id,
            national_id=values.get("national_id"),
            phone=values.get("phone"),
            email=values.get("email"),
            address=values.get("address"),
        )
