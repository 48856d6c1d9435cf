"""GraphQL types, queries and mutations of risk cases, their measures and early warning."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.graphql.common import REFUSALS, input_values, write_or_refuse
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError
from tenantcrm.graphql.loans import LoanClassification
from tenantcrm.risk.case_service import MeasureNotFound, RiskCaseNotFound, RiskCaseService
from tenantcrm.risk.models import EarlyWarning as WarningRow
from tenantcrm.risk.models import RiskCase as RiskCaseRow
from tenantcrm.risk.models import RiskMeasure as RiskMeasureRow
from tenantcrm.risk.models import WarningRule as WarningRuleRow
from tenantcrm.risk.warning_service import THRESHOLDS, WarningService
from tenantcrm.validation import InvalidInput

LIVE_MEASURES = ("planned", "in_progress")
RATIO_PLACES = decimal.Decimal("0.0001")


@strawberry.enum(description="What brought a risk case about.")
class RiskTrigger(enum.Enum):
    EARLY_WARNING = "early_warning"
    OVERDUE = "overdue"
    COMPLAINT = "complaint"
    EXTERNAL = "external"
    MANUAL = "manual"


@strawberry.enum
class RiskCaseStatus(enum.Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


@strawberry.enum
class RiskMeasureStatus(enum.Enum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


@strawberry.enum(description="The early-warning rules a tenant can switch on.")
class WarningKind(enum.Enum):
    DAYS_PAST_DUE = strawberry.enum_value(
        "days_past_due", description="A live loan more than threshold days past due."
    )
    CLASSIFICATION_WORSENED = strawberry.enum_value(
        "classification_worsened", description="A loan's latest class is worse than the one before."
    )
    DEBT_TO_INCOME = strawberry.enum_value(
        "debt_to_income", description="Liabilities over a year's income above threshold (a ratio)."
    )
    NO_CONTACT_WITH_OVERDUE = strawberry.enum_value(
        "no_contact_with_overdue",
        description="Something overdue and no contact for more than threshold days.",
    )


def _id(value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(description="A step of a risk case, with an owner and a deadline.")
class RiskMeasure:
    id: strawberry.ID
    case_id: strawberry.ID
    description: str
    owner_id: strawberry.ID | None
    due_on: datetime.date
    status: RiskMeasureStatus
    done_at: datetime.datetime | None
    created_at: datetime.datetime
    overdue: bool = strawberry.field(description="Planned or in progress, and past its deadline.")

    @classmethod
    def from_row(cls, row: RiskMeasureRow) -> RiskMeasure:
        return cls(
            id=strawberry.ID(str(row.id)),
            case_id=strawberry.ID(str(row.case_id)),
            description=row.description,
            owner_id=_id(row.owner_id),
            due_on=row.due_on,
            status=RiskMeasureStatus(row.status),
            done_at=row.done_at,
            created_at=row.created_at,
            overdue=row.status in LIVE_MEASURES and row.due_on < datetime.date.today(),
        )


@strawberry.type(description="A risk case on a customer: the problem, its measures, the outcome.")
class RiskCase:
    id: strawberry.ID
    customer_id: strawberry.ID
    loan_id: strawberry.ID | None
    trigger: RiskTrigger
    warning_id: strawberry.ID | None = strawberry.field(description="The flag it was opened from, if any.")
    description: str
    status: RiskCaseStatus
    owner_id: strawberry.ID | None
    opened_at: datetime.datetime
    closed_at: datetime.datetime | None
    outcome: str
    lessons: str = strawberry.field(description="Lessons learned, recorded when the case ends.")
    updated_at: datetime.datetime

    @classmethod
    def from_row(cls, row: RiskCaseRow) -> RiskCase:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            loan_id=_id(row.loan_id),
            trigger=RiskTrigger(row.trigger),
            warning_id=_id(row.warning_id),
            description=row.description,
            status=RiskCaseStatus(row.status),
            owner_id=_id(row.owner_id),
            opened_at=row.opened_at,
            closed_at=row.closed_at,
            outcome=row.outcome,
            lessons=row.lessons,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="The case's measures, by deadline.")
    async def measures(self, info: Info[GraphQLContext, None]) -> list[RiskMeasure]:
        rows = await info.context.loaders.measures_by_case.load(uuid.UUID(self.id))
        return [RiskMeasure.from_row(row) for row in rows]


@strawberry.type
class RiskCaseCard:
    case: RiskCase
    customer_name: str
    open_measures: int = strawberry.field(description="Measures planned or in progress.")
    overdue_measures: int = strawberry.field(description="Open measures past their deadline.")


@strawberry.type
class RiskBoardColumn:
    status: RiskCaseStatus
    cases: list[RiskCaseCard]


@strawberry.type(description="Cases in scope by status, newest first; ended ones from the last 30 days.")
class RiskBoard:
    columns: list[RiskBoardColumn]


@strawberry.type(description="Why a flag was raised; only the fields of its kind are set.")
class WarningReason:
    days_past_due: int | None
    days_since_contact: int | None
    classification_from: LoanClassification | None
    classification_to: LoanClassification | None
    debt_to_income: decimal.Decimal | None = strawberry.field(
        description="Liabilities over a year's income, four decimals."
    )

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> WarningReason:
        def classification(key: str) -> LoanClassification | None:
            return LoanClassification(details[key]) if details.get(key) else None

        return cls(
            days_past_due=details.get("days_past_due"),
            days_since_contact=details.get("days_since_contact"),
            classification_from=classification("from"),
            classification_to=classification("to"),
            debt_to_income=decimal.Decimal(details["ratio"]) if details.get("ratio") else None,
        )


@strawberry.type(description="A live early-warning flag on a customer.")
class EarlyWarning:
    id: strawberry.ID
    customer_id: strawberry.ID
    kind: WarningKind
    reason: WarningReason
    raised_at: datetime.datetime
    case_id: strawberry.ID | None = strawberry.field(description="The case opened from it, if any.")

    @classmethod
    def from_row(cls, row: WarningRow) -> EarlyWarning:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            kind=WarningKind(row.kind),
            reason=WarningReason.from_details(row.details or {}),
            raised_at=row.raised_at,
            case_id=_id(row.case_id),
        )


@strawberry.type
class FlaggedCustomer:
    customer_id: strawberry.ID
    customer_name: str
    warning: EarlyWarning


@strawberry.type
class WarningRule:
    kind: WarningKind
    threshold: decimal.Decimal | None = strawberry.field(
        description="Whole days, or for DEBT_TO_INCOME a ratio with four decimals; null for "
        "CLASSIFICATION_WORSENED."
    )
    enabled: bool

    @classmethod
    def from_row(cls, row: WarningRuleRow) -> WarningRule:
        threshold = row.threshold
        limits = THRESHOLDS.get(row.kind)
        if threshold is not None and limits is not None:
            # As stored (four places), whole days as whole numbers; the same just saved or read back.
            threshold = threshold.quantize(decimal.Decimal(1) if limits[2] else RATIO_PLACES)
        return cls(kind=WarningKind(row.kind), threshold=threshold, enabled=row.enabled)


@strawberry.type
class WarningRuleSet:
    rules: list[WarningRule]


@strawberry.type(description="What one evaluation of the rules did.")
class WarningEvaluation:
    raised: int
    cleared: int
    live: int = strawberry.field(description="Flags live after the evaluation.")


@strawberry.input
class OpenRiskCaseInput:
    description: str
    trigger: RiskTrigger = RiskTrigger.MANUAL
    loan_id: strawberry.ID | None = strawberry.field(default=None, description="A loan of the customer.")
    owner_id: strawberry.ID | None = strawberry.field(default=None, description="The caller when left out.")
    warning_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A flag of the customer to open the case from; the trigger is then EARLY_WARNING.",
    )


@strawberry.input(description="Only the fields given are changed; RESOLVED and CLOSED need an outcome.")
class UpdateRiskCaseInput:
    status: RiskCaseStatus | None = strawberry.UNSET
    outcome: str | None = strawberry.UNSET
    lessons: str | None = strawberry.UNSET
    owner_id: strawberry.ID | None = strawberry.UNSET


@strawberry.input
class RiskMeasureInput:
    description: str
    due_on: datetime.date
    owner_id: strawberry.ID | None = strawberry.field(default=None, description="The caller when left out.")


@strawberry.input
class WarningRuleInput:
    kind: WarningKind
    threshold: decimal.Decimal | None = None
    enabled: bool = True


RiskCaseResult = Annotated[
    RiskCase | InputError | NotFoundError | PermissionError, strawberry.union("RiskCaseResult")
]
RiskMeasureResult = Annotated[
    RiskMeasure | InputError | NotFoundError | PermissionError, strawberry.union("RiskMeasureResult")
]
WarningRulesResult = Annotated[
    WarningRuleSet | InputError | PermissionError, strawberry.union("WarningRulesResult")
]
WarningEvaluationResult = Annotated[
    WarningEvaluation | PermissionError, strawberry.union("WarningEvaluationResult")
]


def _cases(info: Info[GraphQLContext, None]) -> RiskCaseService:
    return RiskCaseService(info.context.session, info.context.principal)


def _warnings(info: Info[GraphQLContext, None]) -> WarningService:
    return WarningService(info.context.session, info.context.principal)


async def risk_cases_of(info: Info[GraphQLContext, None], customer_id: uuid.UUID) -> list[RiskCase]:
    rows = await info.context.loaders.cases_by_customer.load(customer_id)
    return [RiskCase.from_row(row) for row in rows]


async def warnings_of(info: Info[GraphQLContext, None], customer_id: uuid.UUID) -> list[EarlyWarning]:
    rows = await info.context.loaders.warnings_by_customer.load(customer_id)
    return [EarlyWarning.from_row(row) for row in rows]


@strawberry.type
class RiskQueries:
    @strawberry.field(description="Risk cases in scope by status, with open and overdue measure counts.")
    async def risk_board(self, info: Info[GraphQLContext, None]) -> RiskBoard:
        service = _cases(info)
        board = await info.context.run(service.board)
        return RiskBoard(
            columns=[
                RiskBoardColumn(
                    status=RiskCaseStatus(status),
                    cases=[
                        RiskCaseCard(
                            case=RiskCase.from_row(card.case),
                            customer_name=card.customer_name,
                            open_measures=card.open_measures,
                            overdue_measures=card.overdue_measures,
                        )
                        for card in cards
                    ],
                )
                for status, cards in board.columns.items()
            ]
        )

    @strawberry.field(description="One risk case, or null when there is none with this id in scope.")
    async def risk_case(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> RiskCase | None:
        service = _cases(info)
        try:
            row = await info.context.run(lambda: service.get_case(str(id)))
        except RiskCaseNotFound:
            return None
        return RiskCase.from_row(row)

    @strawberry.field(description="The institution's early-warning rules.")
    async def warning_rules(self, info: Info[GraphQLContext, None]) -> list[WarningRule]:
        service = _warnings(info)
        return [WarningRule.from_row(row) for row in await info.context.run(service.rules)]

    @strawberry.field(description="Live flags on customers in scope, newest first (at most 100).")
    async def flagged_customers(
        self, info: Info[GraphQLContext, None], kind: WarningKind | None = None
    ) -> list[FlaggedCustomer]:
        service = _warnings(info)
        rows = await info.context.run(lambda: service.flagged(kind=kind.value if kind else None))
        return [
            FlaggedCustomer(
                customer_id=strawberry.ID(str(row.warning.customer_id)),
                customer_name=row.customer_name,
                warning=EarlyWarning.from_row(row.warning),
            )
            for row in rows
        ]


@strawberry.type
class RiskMutations:
    @strawberry.mutation(
        description="Open a risk case on a customer, optionally from one of its flags. Needs risk.manage."
    )
    async def open_risk_case(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: OpenRiskCaseInput
    ) -> RiskCaseResult:
        service = _cases(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.open_case(str(customer_id), input_values(input)),
            not_found=CustomerNotFound,
            what="customer",
            id=customer_id,
        )
        return result if isinstance(result, REFUSALS) else RiskCase.from_row(result)

    @strawberry.mutation(description="Status, owner, outcome and lessons learned. Needs risk.manage.")
    async def update_risk_case(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: UpdateRiskCaseInput
    ) -> RiskCaseResult:
        service = _cases(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.update_case(str(id), input_values(input)),
            not_found=RiskCaseNotFound,
            what="risk case",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else RiskCase.from_row(result)

    @strawberry.mutation(description="A measure on a case still open. Needs risk.manage.")
    async def add_risk_measure(
        self, info: Info[GraphQLContext, None], case_id: strawberry.ID, input: RiskMeasureInput
    ) -> RiskMeasureResult:
        service = _cases(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.add_measure(str(case_id), input_values(input)),
            not_found=RiskCaseNotFound,
            what="risk case",
            id=case_id,
        )
        return result if isinstance(result, REFUSALS) else RiskMeasure.from_row(result)

    @strawberry.mutation(description="Move a measure along. Needs risk.manage.")
    async def update_risk_measure(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, status: RiskMeasureStatus
    ) -> RiskMeasureResult:
        service = _cases(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.update_measure(str(id), status.value),
            not_found=MeasureNotFound,
            what="risk measure",
            id=id,
        )
        return result if isinstance(result, REFUSALS) else RiskMeasure.from_row(result)

    @strawberry.mutation(
        description="Set the threshold and switch of the rules given (the others stay). Needs risk.manage."
    )
    async def update_warning_rules(
        self, info: Info[GraphQLContext, None], rules: list[WarningRuleInput]
    ) -> WarningRulesResult:
        service = _warnings(info)
        try:
            saved = await info.context.write(lambda: service.update_rules([input_values(r) for r in rules]))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return WarningRuleSet(rules=[WarningRule.from_row(row) for row in saved])

    @strawberry.mutation(
        description="Run the rules over the whole book now (as of asOf, today when left out): raise "
        "new flags, clear those no longer matching. Needs risk.manage."
    )
    async def evaluate_warnings(
        self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None
    ) -> WarningEvaluationResult:
        service = _warnings(info)
        try:
            result = await info.context.write(lambda: service.evaluate(as_of))
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return WarningEvaluation(raised=result.raised, cleared=result.cleared, live=result.live)
