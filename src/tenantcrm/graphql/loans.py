"""GraphQL types, queries and mutations of loans: parse, call LoanService (or the calculator), return."""

from __future__ import annotations

import datetime
import decimal
import enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.graphql.collateral import Collateral
from tenantcrm.graphql.common import PageInfo, check_page_size, input_values, money, rate
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError, PublicError, camel
from tenantcrm.loans import ledger as book
from tenantcrm.loans.models import Classification as ClassificationRow
from tenantcrm.loans.models import InstallmentRow
from tenantcrm.loans.models import Loan as LoanRow
from tenantcrm.loans.models import Repayment as RepaymentRow
from tenantcrm.loans.schedule import InvalidTerms, build_schedule
from tenantcrm.loans.service import LoanFilter, LoanNotFound, LoanService, RepaymentNotFound
from tenantcrm.loans.service import LoanRow as PortfolioRow
from tenantcrm.validation import InvalidInput, parse_uuid


@strawberry.enum
class RepaymentMethod(enum.Enum):
    EQUAL_INSTALLMENT = "equal_installment"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY = "interest_only"
    BULLET = "bullet"


@strawberry.enum
class LoanStatus(enum.Enum):
    ACTIVE = "active"
    SETTLED = "settled"
    WRITTEN_OFF = "written_off"
    CANCELLED = "cancelled"


@strawberry.enum(description="The five-category loan classification (五级分类).")
class LoanClassification(enum.Enum):
    NORMAL = strawberry.enum_value("normal", description="正常")
    SPECIAL_MENTION = strawberry.enum_value("special_mention", description="关注")
    SUBSTANDARD = strawberry.enum_value("substandard", description="次级")
    DOUBTFUL = strawberry.enum_value("doubtful", description="可疑")
    LOSS = strawberry.enum_value("loss", description="损失")


@strawberry.enum(description="Arrears ageing bucket by days past due.")
class ArrearsBucket(enum.Enum):
    CURRENT = strawberry.enum_value("current", description="Nothing overdue.")
    DAYS_1_30 = "1-30"
    DAYS_31_60 = "31-60"
    DAYS_61_90 = "61-90"
    DAYS_91_180 = "91-180"
    DAYS_181_360 = "181-360"
    OVER_360 = "360+"


@strawberry.enum(description="Risk flags on a loan, which classification rules may act on.")
class LoanFlag(enum.Enum):
    RESTRUCTURED = "restructured"
    LITIGATION = "litigation"
    BANKRUPTCY = "bankruptcy"
    FRAUD = "fraud"
    GUARANTOR_DEFAULT = "guarantor_default"
    COLLATERAL_IMPAIRED = "collateral_impaired"


@strawberry.enum
class RepaymentChannel(enum.Enum):
    BANK_TRANSFER = "bank_transfer"
    AUTO_DEBIT = "auto_debit"
    CASH = "cash"
    WECHAT = "wechat"
    ALIPAY = "alipay"
    OTHER = "other"


# --- the calculator (a fixed contract: loanSchedule) ---


@strawberry.type
class ScheduledInstallment:
    number: int
    due_date: datetime.date
    principal: decimal.Decimal
    interest: decimal.Decimal
    payment: decimal.Decimal
    balance_after: decimal.Decimal


@strawberry.type(description="A repayment schedule to the cent; the last instalment absorbs rounding.")
class LoanSchedule:
    installments: list[ScheduledInstallment]
    total_interest: decimal.Decimal
    total_payment: decimal.Decimal


# --- the book ---


@strawberry.type(
    description="One instalment of a loan as its repayments left it. Money in CNY, two decimals."
)
class LoanInstallment:
    number: int
    due_date: datetime.date
    principal: decimal.Decimal
    interest: decimal.Decimal
    payment: decimal.Decimal = strawberry.field(description="Principal plus interest.")
    principal_paid: decimal.Decimal
    interest_paid: decimal.Decimal
    outstanding: decimal.Decimal = strawberry.field(description="What is still owed on this instalment.")
    paid_on: datetime.date | None = strawberry.field(description="When it became fully paid.")

    @classmethod
    def from_row(cls, row: InstallmentRow | book.Line) -> LoanInstallment:
        return cls(
            number=row.number,
            due_date=row.due_date,
            principal=money(row.principal),
            interest=money(row.interest),
            payment=money(row.payment),
            principal_paid=money(row.principal_paid),
            interest_paid=money(row.interest_paid),
            outstanding=money(row.outstanding),
            paid_on=row.paid_on,
        )


@strawberry.type(description="A repayment; a reversed one stays in the history but no longer counts.")
class Repayment:
    id: strawberry.ID
    loan_id: strawberry.ID
    amount: decimal.Decimal
    paid_on: datetime.date
    channel: RepaymentChannel
    reference: str
    recorded_at: datetime.datetime
    reversed: bool
    reversed_at: datetime.datetime | None
    reversal_reason: str | None

    @classmethod
    def from_row(cls, row: RepaymentRow) -> Repayment:
        return cls(
            id=strawberry.ID(str(row.id)),
            loan_id=strawberry.ID(str(row.loan_id)),
            amount=money(row.amount),
            paid_on=row.paid_on,
            channel=RepaymentChannel(row.channel),
            reference=row.reference,
            recorded_at=row.recorded_at,
            reversed=row.reversed_at is not None,
            reversed_at=row.reversed_at,
            reversal_reason=row.reversal_reason,
        )


@strawberry.type(description="A loan's arrears at the end of a day, counting repayments made by then.")
class Arrears:
    as_of: datetime.date
    days_past_due: int
    overdue_amount: decimal.Decimal
    overdue_principal: decimal.Decimal
    overdue_interest: decimal.Decimal
    outstanding_principal: decimal.Decimal
    bucket: ArrearsBucket
    next_due: LoanInstallment | None = strawberry.field(
        description="The first instalment due on or after asOf and not fully paid by then."
    )

    @classmethod
    def from_arrears(cls, arrears: book.Arrears) -> Arrears:
        return cls(
            as_of=arrears.as_of,
            days_past_due=arrears.days_past_due,
            overdue_amount=money(arrears.overdue_amount),
            overdue_principal=money(arrears.overdue_principal),
            overdue_interest=money(arrears.overdue_interest),
            outstanding_principal=money(arrears.outstanding_principal),
            bucket=ArrearsBucket(arrears.bucket),
            next_due=LoanInstallment.from_row(arrears.next_due) if arrears.next_due else None,
        )


@strawberry.type(description="Suggests a class from days past due (at least minDaysPastDue) or a flag.")
class ClassificationRule:
    classification: LoanClassification
    min_days_past_due: int | None
    flag: LoanFlag | None

    @classmethod
    def from_rule(cls, rule: book.Rule) -> ClassificationRule:
        return cls(
            classification=LoanClassification(rule.classification),
            min_days_past_due=rule.min_days_past_due,
            flag=LoanFlag(rule.flag) if rule.flag else None,
        )


@strawberry.type(description="The class the institution's rules give a loan: the worst that matches.")
class ClassificationSuggestion:
    as_of: datetime.date
    classification: LoanClassification
    days_past_due: int
    matched_rules: list[ClassificationRule]


@strawberry.type(description="A manual decision on a loan's class, with the suggestion it was made against.")
class ClassificationDecision:
    id: strawberry.ID
    classification: LoanClassification
    previous: LoanClassification | None
    suggested: LoanClassification
    days_past_due: int
    reason: str
    decided_by: strawberry.ID | None = strawberry.field(description="The deciding user's id.")
    decided_at: datetime.datetime

    @classmethod
    def from_row(cls, row: ClassificationRow) -> ClassificationDecision:
        return cls(
            id=strawberry.ID(str(row.id)),
            classification=LoanClassification(row.classification),
            previous=LoanClassification(row.previous) if row.previous else None,
            suggested=LoanClassification(row.suggested),
            days_past_due=row.days_past_due,
            reason=row.reason,
            decided_by=strawberry.ID(str(row.decided_by)) if row.decided_by else None,
            decided_at=row.decided_at,
        )


@strawberry.type(description="A loan of a customer. Money in CNY as strings with two decimals.")
class Loan:
    id: strawberry.ID
    customer_id: strawberry.ID
    product: str
    amount: decimal.Decimal
    annual_rate: decimal.Decimal = strawberry.field(description="A fraction with six decimals: 0.049000.")
    term_months: int
    method: RepaymentMethod
    start_date: datetime.date
    first_due_date: datetime.date
    status: LoanStatus
    classification: LoanClassification
    flags: list[LoanFlag]
    settled_on: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    row: strawberry.Private[LoanRow]
    # Set when the customer list read the page's next instalments at once (prefetch_loans).
    next_due: strawberry.Private[book.Line | None] = None
    next_due_read: strawberry.Private[bool] = False

    @classmethod
    def from_row(cls, row: LoanRow) -> Loan:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            product=row.product,
            amount=money(row.amount),
            annual_rate=rate(row.annual_rate),
            term_months=row.term_months,
            method=RepaymentMethod(row.method),
            start_date=row.start_date,
            first_due_date=row.first_due_date,
            status=LoanStatus(row.status),
            classification=LoanClassification(row.classification),
            flags=[LoanFlag(flag) for flag in row.flags],
            settled_on=row.settled_on,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(description="The collateral securing the loan.")
    async def collateral(self, info: Info[GraphQLContext, None]) -> list[Collateral]:
        rows = await info.context.loaders.collateral_by_loan.load(self.row)
        return [Collateral.from_row(row) for row in rows]

    @strawberry.field(description="Every instalment as the repayments so far left it.")
    async def schedule(self, info: Info[GraphQLContext, None]) -> list[LoanInstallment]:
        rows = await info.context.loaders.installments_by_loan.load(self.row.id)
        return [LoanInstallment.from_row(row) for row in rows]

    @strawberry.field(description="Every repayment in the order applied, reversed ones included.")
    async def repayments(self, info: Info[GraphQLContext, None]) -> list[Repayment]:
        rows = await info.context.loaders.repayments_by_loan.load(self.row.id)
        return [Repayment.from_row(row) for row in rows]

    @strawberry.field(description="Arrears at the end of asOf (today when left out).")
    async def arrears(self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None) -> Arrears:
        found = await info.context.loaders.arrears.load((self.row, as_of or datetime.date.today()))
        return Arrears.from_arrears(found)

    @strawberry.field(description="The first instalment due today or later and not yet fully paid.")
    def next_installment(self, info: Info[GraphQLContext, None]) -> LoanInstallment | None:
        # Sync when the list read it already (a sync field costs a fraction of an async one);
        # otherwise the loader's coroutine, which graphql-core awaits like an async resolver's.
        if self.next_due_read:
            return LoanInstallment.from_row(self.next_due) if self.next_due else None
        return self._load_next_installment(info)  # type: ignore[return-value]

    async def _load_next_installment(self, info: Info[GraphQLContext, None]) -> LoanInstallment | None:
        found = await info.context.loaders.next_installment.load((self.row, datetime.date.today()))
        return LoanInstallment.from_row(found) if found else None

    @strawberry.field(description="What one repayment on that date (today when left out) must be to settle.")
    async def payoff_amount(
        self, info: Info[GraphQLContext, None], on: datetime.date | None = None
    ) -> decimal.Decimal:
        return money(await info.context.loaders.payoff.load((self.row, on or datetime.date.today())))

    @strawberry.field(
        description="Outstanding principal over the appraised value of the linked collateral, a ratio "
        "with four decimals (0.6543 is 65.43%); null without collateral."
    )
    async def loan_to_value(self, info: Info[GraphQLContext, None]) -> decimal.Decimal | None:
        return await info.context.loaders.loan_to_value.load(self.row)

    @strawberry.field(
        description="The class the institution's rules suggest as of a date (today when left out)."
    )
    async def classification_suggestion(
        self, info: Info[GraphQLContext, None], as_of: datetime.date | None = None
    ) -> ClassificationSuggestion:
        day = as_of or datetime.date.today()
        found = await info.context.loaders.suggestion.load((self.row, day))
        return ClassificationSuggestion(
            as_of=day,
            classification=LoanClassification(found.classification),
            days_past_due=found.arrears.days_past_due,
            matched_rules=[ClassificationRule.from_rule(rule) for rule in found.rules],
        )

    @strawberry.field(description="Decisions on the loan's class, newest first.")
    async def classification_history(self, info: Info[GraphQLContext, None]) -> list[ClassificationDecision]:
        rows = await info.context.loaders.history_by_loan.load(self.row.id)
        return [ClassificationDecision.from_row(row) for row in rows]


@strawberry.type(description="A loan in the portfolio with its arrears as of the list's date.")
class LoanEdge:
    cursor: str
    node: Loan
    customer_name: str
    outstanding_principal: decimal.Decimal
    days_past_due: int
    overdue_amount: decimal.Decimal
    next_due_date: datetime.date | None
    bucket: ArrearsBucket

    @classmethod
    def from_row(cls, row: PortfolioRow) -> LoanEdge:
        return cls(
            cursor=str(row.loan.id),
            node=Loan.from_row(row.loan),
            customer_name=row.customer_name,
            outstanding_principal=money(row.outstanding_principal),
            days_past_due=row.days_past_due,
            overdue_amount=money(row.overdue_amount),
            next_due_date=row.next_due_date,
            bucket=ArrearsBucket(row.bucket),
        )


@strawberry.type
class LoanConnection:
    as_of: datetime.date
    edges: list[LoanEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Loans matching the filter across all pages.")


@strawberry.type(description="A repayment just recorded or reversed, and its loan re-allocated.")
class RepaymentOutcome:
    repayment: Repayment
    loan: Loan


@strawberry.type
class ClassificationRuleSet:
    rules: list[ClassificationRule]


@strawberry.input
class LoanFilterInput:
    status: LoanStatus | None = None
    classification: LoanClassification | None = None
    bucket: ArrearsBucket | None = strawberry.field(default=None, description="Arrears bucket as of asOf.")
    customer_id: strawberry.ID | None = None


@strawberry.input
class CreateLoanInput:
    product: str
    amount: decimal.Decimal = strawberry.field(description="CNY, at most two decimals.")
    annual_rate: decimal.Decimal = strawberry.field(description="A fraction: 0.049 for 4.9%.")
    term_months: int
    method: RepaymentMethod
    start_date: datetime.date
    first_due_date: datetime.date | None = strawberry.field(
        default=None, description="One month after the start when left out."
    )
    collateral_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="Collateral of the same customer securing the loan."
    )
    flags: list[LoanFlag] = strawberry.field(default_factory=list)


@strawberry.input
class RepaymentInput:
    amount: decimal.Decimal
    paid_on: datetime.date | None = strawberry.field(default=None, description="Today when left out.")
    channel: RepaymentChannel = RepaymentChannel.BANK_TRANSFER
    reference: str = ""


@strawberry.input(description="Exactly one condition: minDaysPastDue or flag.")
class ClassificationRuleInput:
    classification: LoanClassification
    min_days_past_due: int | None = None
    flag: LoanFlag | None = None


LoanResult = Annotated[Loan | InputError | NotFoundError | PermissionError, strawberry.union("LoanResult")]
RepaymentResult = Annotated[
    RepaymentOutcome | InputError | NotFoundError | PermissionError, strawberry.union("RepaymentResult")
]
ClassificationRulesResult = Annotated[
    ClassificationRuleSet | InputError | PermissionError, strawberry.union("ClassificationRulesResult")
]


def _service(info: Info[GraphQLContext, None]) -> LoanService:
    return LoanService(info.context.session, info.context.principal)


@strawberry.type
class LoanQueries:
    @strawberry.field(
        description="The schedule of a loan before it is saved. annualRate is a fraction: 0.049 for 4.9%."
    )
    def loan_schedule(
        self,
        info: Info[GraphQLContext, None],
        amount: decimal.Decimal,
        annual_rate: decimal.Decimal,
        term_months: int,
        method: RepaymentMethod,
        start_date: datetime.date,
    ) -> LoanSchedule:
        # Pure computation: no database, no tenant data; any authenticated caller may ask.
        try:
            schedule = build_schedule(amount, annual_rate, term_months, method.value, start_date)
        except InvalidTerms as invalid:
            raise PublicError(f"{camel(invalid.field)}: {invalid}") from None
        return LoanSchedule(
            installments=[
                ScheduledInstallment(
                    number=row.number,
                    due_date=row.due_date,
                    principal=row.principal,
                    interest=row.interest,
                    payment=row.payment,
                    balance_after=row.balance_after,
                )
                for row in schedule.installments
            ],
            total_interest=schedule.total_interest,
            total_payment=schedule.total_payment,
        )

    @strawberry.field(description="One loan, or null when there is none with this id.")
    async def loan(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> Loan | None:
        service = _service(info)
        try:
            row = await info.context.run(lambda: service.get_loan(str(id)))
        except LoanNotFound:
            return None
        return Loan.from_row(row)

    @strawberry.field(
        description="The portfolio, newest first, with arrears as of asOf (today when left out)."
    )
    async def loans(
        self,
        info: Info[GraphQLContext, None],
        first: int | None = None,
        after: str | None = None,
        filter: LoanFilterInput | None = None,
        as_of: datetime.date | None = None,
    ) -> LoanConnection:
        check_page_size(first, "first")
        flt = filter or LoanFilterInput()
        customer_id = None
        if flt.customer_id is not None:
            customer_id = parse_uuid(flt.customer_id)
            if customer_id is None:
                raise PublicError("filter.customerId is not a customer id")
        service_filter = LoanFilter(
            status=flt.status.value if flt.status else None,
            classification=flt.classification.value if flt.classification else None,
            bucket=flt.bucket.value if flt.bucket else None,
            customer_id=customer_id,
        )
        day = as_of or datetime.date.today()
        service = _service(info)
        try:
            page = await info.context.run(
                lambda: service.list_loans(service_filter, as_of=day, first=first, after=after)
            )
        except InvalidInput:
            raise PublicError("after is not a cursor of this list") from None
        edges = [LoanEdge.from_row(row) for row in page.rows]
        return LoanConnection(
            as_of=day,
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=page.end_cursor,
            ),
            total_count=page.total_count,
        )

    @strawberry.field(description="The institution's classification rules.")
    async def classification_rules(self, info: Info[GraphQLContext, None]) -> list[ClassificationRule]:
        service = _service(info)
        rules = await info.context.run(service.rules)
        return [ClassificationRule.from_rule(rule) for rule in rules]


@strawberry.type
class LoanMutations:
    @strawberry.mutation(
        description="A loan with its contractual schedule; a prospect becomes active. Needs loans.write."
    )
    async def create_loan(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: CreateLoanInput
    ) -> LoanResult:
        service = _service(info)
        try:
            row = await info.context.write(lambda: service.create_loan(str(customer_id), input_values(input)))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CustomerNotFound:
            return NotFoundError(message="customer not found", id=customer_id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Loan.from_row(row)

    @strawberry.mutation(
        description="Record a repayment and re-allocate the loan; more than settles it is refused. "
        "Needs loans.write."
    )
    async def record_repayment(
        self, info: Info[GraphQLContext, None], loan_id: strawberry.ID, input: RepaymentInput
    ) -> RepaymentResult:
        service = _service(info)

        async def record() -> tuple[RepaymentRow, LoanRow]:
            repayment = await service.record_repayment(str(loan_id), input_values(input))
            return repayment, await service.get_loan(repayment.loan_id)

        try:
            repayment, loan = await info.context.write(record)
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except LoanNotFound:
            return NotFoundError(message="loan not found", id=loan_id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return RepaymentOutcome(repayment=Repayment.from_row(repayment), loan=Loan.from_row(loan))

    @strawberry.mutation(
        description="Mark a mistaken repayment reversed (it stays in the history) and re-allocate the "
        "rest. Needs loans.write."
    )
    async def reverse_repayment(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, reason: str
    ) -> RepaymentResult:
        service = _service(info)

        async def reverse() -> tuple[RepaymentRow, LoanRow]:
            repayment = await service.reverse_repayment(str(id), reason)
            return repayment, await service.get_loan(repayment.loan_id)

        try:
            repayment, loan = await info.context.write(reverse)
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except RepaymentNotFound:
            return NotFoundError(message="repayment not found", id=id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return RepaymentOutcome(repayment=Repayment.from_row(repayment), loan=Loan.from_row(loan))

    @strawberry.mutation(
        description="Decide a loan's five-category class, with a reason kept in its history. "
        "Needs loans.classify."
    )
    async def classify_loan(
        self,
        info: Info[GraphQLContext, None],
        id: strawberry.ID,
        classification: LoanClassification,
        reason: str,
    ) -> LoanResult:
        service = _service(info)

        async def classify() -> LoanRow:
            decision = await service.classify(str(id), classification.value, reason)
            return await service.get_loan(decision.loan_id)

        try:
            row = await info.context.write(classify)
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except LoanNotFound:
            return NotFoundError(message="loan not found", id=id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Loan.from_row(row)

    @strawberry.mutation(description="Replace a loan's risk flags. Needs loans.classify.")
    async def set_loan_flags(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, flags: list[LoanFlag]
    ) -> LoanResult:
        service = _service(info)
        try:
            row = await info.context.write(lambda: service.set_flags(str(id), [flag.value for flag in flags]))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except LoanNotFound:
            return NotFoundError(message="loan not found", id=id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Loan.from_row(row)

    @strawberry.mutation(
        description="Replace the institution's classification rules as a whole. Needs loans.classify."
    )
    async def replace_classification_rules(
        self, info: Info[GraphQLContext, None], rules: list[ClassificationRuleInput]
    ) -> ClassificationRulesResult:
        service = _service(info)
        try:
            saved = await info.context.write(
                lambda: service.replace_rules([input_values(rule) for rule in rules])
            )
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return ClassificationRuleSet(rules=[ClassificationRule.from_rule(rule) for rule in saved])
