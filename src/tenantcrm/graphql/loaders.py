"""Per-request DataLoaders: nested lists are read with one service call per level, not one per parent."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Hashable
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from strawberry.dataloader import DataLoader

from tenantcrm.collateral.models import Appraisal, Collateral
from tenantcrm.collateral.service import CollateralService
from tenantcrm.complaints.models import Complaint
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.contacts.service import ContactService
from tenantcrm.loans import ledger as book
from tenantcrm.loans.models import Classification, InstallmentRow, Loan, Repayment
from tenantcrm.loans.next_due_service import next_installments_for
from tenantcrm.loans.service import LoanService, Suggestion
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.models import EarlyWarning, RiskCase, RiskMeasure
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.timeline.service import TimelinePage, TimelineService

if TYPE_CHECKING:
    from tenantcrm.graphql.context import GraphQLContext

K = TypeVar("K")
V = TypeVar("V")


class Loaders:
    """Each loader's batch function runs its service call through `ctx.run`, so a batch is one
    turn on the request's connection. Keys are ids, or (loan row, date) for values as of a date."""

    def __init__(self, ctx: GraphQLContext) -> None:
        self._ctx = ctx
        self.collateral_by_customer = DataLoader(self._collateral_by_customer)
        self.loans_by_customer = DataLoader(self._loans_by_customer)
        self.loans_by_collateral = DataLoader(self._loans_by_collateral)
        self.collateral_by_loan: DataLoader[Loan, list[Collateral]] = DataLoader(
            self._collateral_by_loan, cache_key_fn=_loan_key
        )
        self.installments_by_loan = DataLoader(self._installments_by_loan)
        self.repayments_by_loan = DataLoader(self._repayments_by_loan)
        self.appraisals_by_collateral = DataLoader(self._appraisals_by_collateral)
        self.history_by_loan = DataLoader(self._history_by_loan)
        self.loan_to_value: DataLoader[Loan, Decimal | None] = DataLoader(
            self._loan_to_value, cache_key_fn=_loan_key
        )
        self.arrears: DataLoader[tuple[Loan, date], book.Arrears] = DataLoader(
            self._arrears, cache_key_fn=_dated_key
        )
        self.next_installment: DataLoader[tuple[Loan, date], book.Line | None] = DataLoader(
            self._next_installment, cache_key_fn=_dated_key
        )
        self.payoff: DataLoader[tuple[Loan, date], Decimal] = DataLoader(
            self._payoff, cache_key_fn=_dated_key
        )
        self.suggestion: DataLoader[tuple[Loan, date], Suggestion] = DataLoader(
            self._suggestion, cache_key_fn=_dated_key
        )
        # The relationship work. Keys with a second part: (customer id, page size or open only).
        self.interactions_by_customer: DataLoader[tuple[uuid.UUID, int], list[Interaction]] = DataLoader(
            self._interactions_by_customer
        )
        self.follow_ups_by_customer: DataLoader[tuple[uuid.UUID, bool], list[FollowUp]] = DataLoader(
            self._follow_ups_by_customer
        )
        self.complaints_by_customer = DataLoader(self._complaints_by_customer)
        self.cases_by_customer = DataLoader(self._cases_by_customer)
        self.warnings_by_customer = DataLoader(self._warnings_by_customer)
        self.measures_by_case = DataLoader(self._measures_by_case)
        self.timeline: DataLoader[tuple[uuid.UUID, int, str | None], TimelinePage] = DataLoader(
            self._timeline
        )

    def _loans(self) -> LoanService:
        return LoanService(self._ctx.session, self._ctx.principal)

    def _collateral(self) -> CollateralService:
        return CollateralService(self._ctx.session, self._ctx.principal)

    async def _batch(self, ids: list[uuid.UUID], fetch: Callable[[], Awaitable[dict[Any, V]]]) -> list[V]:
        found = await self._ctx.run(fetch)
        return [found[key] for key in ids]

    # --- one query per batch ---

    async def _collateral_by_customer(self, ids: list[uuid.UUID]) -> list[list[Collateral]]:
        service = self._collateral()
        return await self._batch(ids, lambda: service.list_for_customers(ids))

    async def _loans_by_customer(self, ids: list[uuid.UUID]) -> list[list[Loan]]:
        service = self._loans()
        return await self._batch(ids, lambda: service.loans_for_customers(ids))

    async def _loans_by_collateral(self, ids: list[uuid.UUID]) -> list[list[Loan]]:
        service = self._loans()
        return await self._batch(ids, lambda: service.loans_for_collateral(ids))

    async def _collateral_by_loan(self, loans: list[Loan]) -> list[list[Collateral]]:
        # From the customers' side: LoanService.collateral_for_loans cannot build its query (its
        # scope join is ambiguous). A loan's collateral is always its customer's.
        collateral, loans_service = self._collateral(), self._loans()

        async def fetch() -> dict[uuid.UUID, list[Collateral]]:
            owned = await collateral.list_for_customers(list({loan.customer_id for loan in loans}))
            items = [item for rows in owned.values() for item in rows]
            linked = await loans_service.loans_for_collateral([item.id for item in items]) if items else {}
            secured = {item.id: {loan.id for loan in linked[item.id]} for item in items}
            return {
                loan.id: [item for item in owned[loan.customer_id] if loan.id in secured[item.id]]
                for loan in loans
            }

        return await self._batch([loan.id for loan in loans], fetch)

    async def _installments_by_loan(self, ids: list[uuid.UUID]) -> list[list[InstallmentRow]]:
        service = self._loans()
        return await self._batch(ids, lambda: service.installments_for_loans(ids))

    async def _repayments_by_loan(self, ids: list[uuid.UUID]) -> list[list[Repayment]]:
        service = self._loans()
        return await self._batch(ids, lambda: service.repayments_for_loans(ids))

    async def _loan_to_value(self, loans: list[Loan]) -> list[Decimal | None]:
        service = self._loans()
        ratios = await self._ctx.run(lambda: service.loan_to_value(loans))
        return [ratios[loan.id] for loan in loans]

    async def _interactions_by_customer(self, keys: list[tuple[uuid.UUID, int]]) -> list[list[Interaction]]:
        service = ContactService(self._ctx.session, self._ctx.principal)

        async def fetch() -> dict[tuple[uuid.UUID, int], list[Interaction]]:
            # One query per page size asked for: in practice one.
            found: dict[tuple[uuid.UUID, int], list[Interaction]] = {}
            for size in sorted({size for _, size in keys}):
                ids = [customer_id for customer_id, wanted in keys if wanted == size]
                rows = await service.interactions_for_customers(ids, per_customer=size)
                found.update({(customer_id, size): rows[customer_id] for customer_id in ids})
            return found

        found = await self._ctx.run(fetch)
        return [found[key] for key in keys]

    async def _follow_ups_by_customer(self, keys: list[tuple[uuid.UUID, bool]]) -> list[list[FollowUp]]:
        service = ContactService(self._ctx.session, self._ctx.principal)

        async def fetch() -> dict[tuple[uuid.UUID, bool], list[FollowUp]]:
            found: dict[tuple[uuid.UUID, bool], list[FollowUp]] = {}
            for open_only in sorted({flag for _, flag in keys}):
                ids = [customer_id for customer_id, wanted in keys if wanted == open_only]
                rows = await service.follow_ups_for_customers(ids, open_only=open_only)
                found.update({(customer_id, open_only): rows[customer_id] for customer_id in ids})
            return found

        found = await self._ctx.run(fetch)
        return [found[key] for key in keys]

    async def _complaints_by_customer(self, ids: list[uuid.UUID]) -> list[list[Complaint]]:
        service = ComplaintService(self._ctx.session, self._ctx.principal)
        return await self._batch(ids, lambda: service.complaints_for_customers(ids))

    async def _cases_by_customer(self, ids: list[uuid.UUID]) -> list[list[RiskCase]]:
        service = RiskCaseService(self._ctx.session, self._ctx.principal)
        return await self._batch(ids, lambda: service.cases_for_customers(ids))

    async def _warnings_by_customer(self, ids: list[uuid.UUID]) -> list[list[EarlyWarning]]:
        service = WarningService(self._ctx.session, self._ctx.principal)
        return await self._batch(ids, lambda: service.for_customers(ids))

    async def _measures_by_case(self, ids: list[uuid.UUID]) -> list[list[RiskMeasure]]:
        service = RiskCaseService(self._ctx.session, self._ctx.principal)
        return await self._batch(ids, lambda: service.measures(ids))

    async def _appraisals_by_collateral(self, ids: list[uuid.UUID]) -> list[list[Appraisal]]:
        service = self._collateral()
        return await self._batch(ids, lambda: service.appraisals_for(ids))

    async def _history_by_loan(self, ids: list[uuid.UUID]) -> list[list[Classification]]:
        service = self._loans()
        return await self._batch(ids, lambda: service.decisions_for(ids))

    # --- values as of a date: one service call per distinct date (in practice one) ---

    async def _arrears(self, keys: list[tuple[Loan, date]]) -> list[book.Arrears]:
        service = self._loans()
        return await self._dated(keys, service.arrears_for)

    async def _next_installment(self, keys: list[tuple[Loan, date]]) -> list[book.Line | None]:
        ctx = self._ctx
        return await self._dated(
            keys, lambda loans, day: next_installments_for(ctx.session, ctx.principal, loans, day)
        )

    async def _payoff(self, keys: list[tuple[Loan, date]]) -> list[Decimal]:
        service = self._loans()
        return await self._dated(keys, service.payoffs_for)

    async def _suggestion(self, keys: list[tuple[Loan, date]]) -> list[Suggestion]:
        service = self._loans()
        return await self._dated(keys, service.suggestions_for)

    async def _dated(
        self,
        keys: list[tuple[Loan, date]],
        fetch: Callable[[list[Loan], date], Awaitable[dict[uuid.UUID, V]]],
    ) -> list[V]:
        async def fetch_by_date() -> dict[tuple[uuid.UUID, date], V]:
            found: dict[tuple[uuid.UUID, date], V] = {}
            for day in sorted({day for _, day in keys}):
                loans = list({loan.id: loan for loan, wanted in keys if wanted == day}.values())
                found.update({(loan_id, day): value for loan_id, value in (await fetch(loans, day)).items()})
            return found

        found = await self._ctx.run(fetch_by_date)
        return [found[(loan.id, day)] for loan, day in keys]

    # --- kept per parent ---

    async def _timeline(self, keys: list[tuple[uuid.UUID, int, str | None]]) -> list[TimelinePage]:
        # A page merges ten sources per customer: kept per customer, ten statements each.
        service = TimelineService(self._ctx.session, self._ctx.principal)
        return await self._ctx.run(
            lambda: _each(keys, lambda key: service.page(key[0], first=key[1], before=key[2]))
        )


async def _each(keys: list[K], load: Callable[[K], Awaitable[V]]) -> list[V]:
    return [await load(key) for key in keys]


def _loan_key(loan: Loan) -> Hashable:
    return loan.id


def _dated_key(key: tuple[Loan, date]) -> Hashable:
    return (key[0].id, key[1])
