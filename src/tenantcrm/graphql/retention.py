"""GraphQL types, queries and mutations of retention policies, legal hold, erasure and access requests."""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.graphql.common import REFUSALS, input_values, write_or_refuse
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError
from tenantcrm.retention.access_service import AccessExportService
from tenantcrm.retention.erasure_service import BASES, REQUESTERS, ErasureNotFound, ErasureService
from tenantcrm.retention.models import ErasureRequest as ErasureRow
from tenantcrm.retention.models import RetentionPolicy as PolicyRow
from tenantcrm.retention.models import RetentionRun as RunRow
from tenantcrm.retention.service import ACTIONS, CATEGORIES, RetentionResult, RetentionService


def _enum(name: str, values: tuple[str, ...], description: str) -> Any:
    """A GraphQL enum over a service's tuple of stored values, so the two never drift apart."""
    return strawberry.enum(
        enum.Enum(name, {value.upper(): value for value in values}), description=description
    )


RetentionCategory = _enum("RetentionCategory", CATEGORIES, "A kind of data a retention policy governs.")
RetentionAction = _enum(
    "RetentionAction", ACTIONS, "Delete, or anonymise: personal data removed, figures kept."
)
ErasureBasis = _enum("ErasureBasis", BASES, "The legal basis of an erasure request.")
ErasureRequester = _enum("ErasureRequester", REQUESTERS, "Who asked for the erasure.")


@strawberry.enum
class ErasureStatus(enum.Enum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"


@strawberry.enum
class ErasureDecision(enum.Enum):
    APPROVE = "approve"
    REJECT = "reject"


@strawberry.type(description="How long one category of data is kept, and what happens after.")
class RetentionPolicy:
    category: RetentionCategory  # type: ignore[valid-type]
    period_days: int
    action: RetentionAction  # type: ignore[valid-type]
    enabled: bool
    updated_at: datetime.datetime

    @classmethod
    def from_row(cls, row: PolicyRow) -> RetentionPolicy:
        return cls(
            category=RetentionCategory(row.category),
            period_days=row.period_days,
            action=RetentionAction(row.action),
            enabled=row.enabled,
            updated_at=row.updated_at,
        )


@strawberry.type(description="What a run did (or a dry run would do) to one category.")
class RetentionCount:
    category: RetentionCategory  # type: ignore[valid-type]
    action: RetentionAction  # type: ignore[valid-type]
    period_days: int
    count: int


@strawberry.type(description="The outcome of a retention run or dry run, per enabled category.")
class RetentionOutcome:
    as_of: datetime.date
    dry_run: bool
    run_id: strawberry.ID | None
    categories: list[RetentionCount]
    disabled: list[RetentionCategory] = strawberry.field(  # type: ignore[valid-type]
        description="Categories whose policy is switched off."
    )
    audit_chain_broken_at: int | None = strawberry.field(
        description="Set when the audit chain does not verify at this sequence number: no audit event "
        "was pruned, the other categories ran. Run `tenantcrm audit verify` and investigate."
    )

    @classmethod
    def from_result(cls, result: RetentionResult) -> RetentionOutcome:
        return cls(
            as_of=result.as_of,
            dry_run=result.dry_run,
            run_id=None if result.run_id is None else strawberry.ID(str(result.run_id)),
            categories=[
                RetentionCount(
                    category=RetentionCategory(c.category),
                    action=RetentionAction(c.action),
                    period_days=c.period_days,
                    count=c.count,
                )
                for c in result.categories
            ],
            disabled=[RetentionCategory(name) for name in result.skipped],
            audit_chain_broken_at=result.audit_chain_broken_at(),
        )


@strawberry.type(description="A past retention run: when, by whom (or the schedule), with counts.")
class RetentionRun:
    id: strawberry.ID
    started_at: datetime.datetime
    as_of: datetime.date
    trigger: str = strawberry.field(description="manual, schedule or cli.")
    dry_run: bool
    actor: str
    counts: JSON

    @classmethod
    def from_row(cls, row: RunRow) -> RetentionRun:
        return cls(
            id=strawberry.ID(str(row.id)),
            started_at=row.started_at,
            as_of=row.as_of,
            trigger=row.trigger,
            dry_run=row.dry_run,
            actor=row.actor,
            counts=row.counts,
        )


@strawberry.type(description="An erasure request from request through review to execution.")
class ErasureRequest:
    id: strawberry.ID
    customer_id: strawberry.ID
    customer_ref: str = strawberry.field(description="A short reference that outlives the customer.")
    basis: ErasureBasis  # type: ignore[valid-type]
    requester: ErasureRequester  # type: ignore[valid-type]
    action: RetentionAction  # type: ignore[valid-type]
    status: ErasureStatus
    requested_at: datetime.datetime
    reviewed_at: datetime.datetime | None
    review_note: str
    executed_at: datetime.datetime | None
    certificate: JSON | None = strawberry.field(
        description="Once executed: counts of what was removed, when and by whom; no personal data."
    )

    @classmethod
    def from_row(cls, row: ErasureRow) -> ErasureRequest:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            customer_ref=row.customer_ref,
            basis=ErasureBasis(row.basis),
            requester=ErasureRequester(row.requester),
            action=RetentionAction(row.action),
            status=ErasureStatus(row.status),
            requested_at=row.requested_at,
            reviewed_at=row.reviewed_at,
            review_note=row.review_note,
            executed_at=row.executed_at,
            certificate=row.certificate,
        )


@strawberry.type(description="Everything held on one customer, section by section, as JSON rows.")
class AccessExport:
    customer_id: strawberry.ID
    counts: JSON = strawberry.field(description="Rows per section.")
    sections: JSON


@strawberry.type
class LegalHold:
    customer_id: strawberry.ID
    legal_hold: bool


@strawberry.type
class RetentionPolicySet:
    policies: list[RetentionPolicy]


@strawberry.input
class RetentionPolicyInput:
    category: RetentionCategory  # type: ignore[valid-type]
    period_days: int
    action: RetentionAction  # type: ignore[valid-type]
    enabled: bool


@strawberry.input
class ErasureRequestInput:
    basis: ErasureBasis  # type: ignore[valid-type]
    requester: ErasureRequester  # type: ignore[valid-type]
    action: RetentionAction  # type: ignore[valid-type]


@strawberry.input
class ErasureReviewInput:
    decision: ErasureDecision
    note: str = ""


RetentionPoliciesResult = Annotated[
    RetentionPolicySet | InputError | PermissionError, strawberry.union("RetentionPoliciesResult")
]
RetentionOutcomeResult = Annotated[
    RetentionOutcome | PermissionError, strawberry.union("RetentionOutcomeResult")
]
LegalHoldResult = Annotated[LegalHold | NotFoundError | PermissionError, strawberry.union("LegalHoldResult")]
ErasureRequestResult = Annotated[
    ErasureRequest | InputError | NotFoundError | PermissionError, strawberry.union("ErasureRequestResult")
]
AccessExportResult = Annotated[
    AccessExport | InputError | NotFoundError | PermissionError, strawberry.union("AccessExportResult")
]


def _retention(info: Info[GraphQLContext, None]) -> RetentionService:
    return RetentionService(info.context.session, info.context.principal)


def _erasure(info: Info[GraphQLContext, None]) -> ErasureService:
    return ErasureService(info.context.session, info.context.principal)


@strawberry.type
class RetentionQueries:
    @strawberry.field(description="The retention policy of every category. Needs admin.retention.")
    async def retention_policies(self, info: Info[GraphQLContext, None]) -> list[RetentionPolicy]:
        service = _retention(info)
        return [RetentionPolicy.from_row(row) for row in await info.context.run(service.policies)]

    @strawberry.field(
        description="The dry run: what a retention run as of asOf (today when left out) would do, per "
        "category, changing nothing. Needs admin.retention."
    )
    async def retention_dry_run(
        self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None
    ) -> RetentionOutcome:
        service = _retention(info)
        return RetentionOutcome.from_result(await info.context.run(lambda: service.plan(as_of)))

    @strawberry.field(description="The latest retention runs, newest first. Needs admin.retention.")
    async def retention_runs(self, info: Info[GraphQLContext, None]) -> list[RetentionRun]:
        service = _retention(info)
        return [RetentionRun.from_row(row) for row in await info.context.run(service.recent_runs)]

    @strawberry.field(
        description="The latest erasure requests of customers in scope (and certificates of erased "
        "ones), newest first. Needs admin.retention."
    )
    async def erasure_requests(self, info: Info[GraphQLContext, None]) -> list[ErasureRequest]:
        service = _erasure(info)
        return [ErasureRequest.from_row(row) for row in await info.context.run(service.recent)]

    @strawberry.field(description="One erasure request, or null when there is none with this id in scope.")
    async def erasure_request(
        self, info: Info[GraphQLContext, None], id: strawberry.ID
    ) -> ErasureRequest | None:
        service = _erasure(info)
        try:
            row = await info.context.run(lambda: service.get(str(id)))
        except ErasureNotFound:
            return None
        return ErasureRequest.from_row(row)


@strawberry.type
class RetentionMutations:
    @strawberry.mutation(
        description="Set the period, action and switch of the categories given (the others stay). "
        "Needs admin.retention."
    )
    async def update_retention_policies(
        self, info: Info[GraphQLContext, None], policies: list[RetentionPolicyInput]
    ) -> RetentionPoliciesResult:
        service = _retention(info)
        result = await write_or_refuse(
            info.context, lambda: service.update_policies([input_values(p) for p in policies])
        )
        if isinstance(result, REFUSALS):
            return result
        return RetentionPolicySet(policies=[RetentionPolicy.from_row(row) for row in result])

    @strawberry.mutation(
        description="Run retention now as of asOf (today when left out): delete or anonymise what the "
        "enabled policies select; audited with its counts. Needs admin.retention."
    )
    async def run_retention(
        self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None
    ) -> RetentionOutcomeResult:
        service = _retention(info)
        result = await write_or_refuse(info.context, lambda: service.run(as_of))
        return result if isinstance(result, REFUSALS) else RetentionOutcome.from_result(result)

    @strawberry.mutation(
        description="Put a customer on legal hold (exempt from retention and erasure) or release it. "
        "Needs admin.retention."
    )
    async def set_legal_hold(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, hold: bool
    ) -> LegalHoldResult:
        service = _retention(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.set_legal_hold(str(customer_id), hold),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        if isinstance(result, REFUSALS):
            return result
        return LegalHold(customer_id=strawberry.ID(str(result.id)), legal_hold=result.legal_hold)

    @strawberry.mutation(description="Record an erasure request for a customer. Needs admin.retention.")
    async def request_erasure(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: ErasureRequestInput
    ) -> ErasureRequestResult:
        service = _erasure(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.request(str(customer_id), input_values(input)),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        return result if isinstance(result, REFUSALS) else ErasureRequest.from_row(result)

    @strawberry.mutation(
        description="Approve or reject a request (a rejection needs a note); never by its requester. "
        "Needs admin.retention."
    )
    async def review_erasure(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: ErasureReviewInput
    ) -> ErasureRequestResult:
        service = _erasure(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.review(str(id), input_values(input)),
            not_found=ErasureNotFound,
            what="erasure request",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else ErasureRequest.from_row(result)

    @strawberry.mutation(
        description="Erase the customer of an approved request and keep its certificate; refused on "
        "legal hold or a live loan. Needs admin.retention."
    )
    async def execute_erasure(
        self, info: Info[GraphQLContext, None], id: strawberry.ID
    ) -> ErasureRequestResult:
        service = _erasure(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.execute(str(id)),
            not_found=ErasureNotFound,
            what="erasure request",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else ErasureRequest.from_row(result)

    @strawberry.mutation(
        description="An access request: everything held on one customer, personal data in clear, each "
        "revealed field logged with the purpose. Needs admin.retention and pii.reveal."
    )
    async def export_customer_data(
        self,
        info: Info[GraphQLContext, None],
        customer_id: strawberry.ID,
        purpose: str,
    ) -> AccessExportResult:
        ctx = info.context
        service = AccessExportService(ctx.session, ctx.principal, ctx.cipher)
        result = await write_or_refuse(
            ctx,
            lambda: service.export(str(customer_id), purpose=purpose, output="json", channel="api"),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        if isinstance(result, REFUSALS):
            return result
        return AccessExport(
            customer_id=strawberry.ID(str(result.customer_id)),
            counts=result.counts(),
            sections=result.sections,
        )
