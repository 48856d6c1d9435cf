"""GraphQL types, queries and mutations of collateral: parse, call CollateralService, return."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.collateral.models import Appraisal as AppraisalRow
from tenantcrm.collateral.models import Collateral as CollateralRow
from tenantcrm.collateral.service import CollateralNotFound, CollateralService
from tenantcrm.customers.regions import region_name
from tenantcrm.customers.service import CustomerNotFound
from tenantcrm.graphql.common import input_values, money, optional_money
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError
from tenantcrm.validation import InvalidInput

if TYPE_CHECKING:
    from tenantcrm.graphql.loans import Loan


@strawberry.enum
class CollateralKind(enum.Enum):
    RESIDENCE = "residence"
    COMMERCIAL = "commercial"
    LAND = "land"
    VEHICLE = "vehicle"
    EQUIPMENT = "equipment"
    DEPOSIT = "deposit"


@strawberry.enum
class TitleStatus(enum.Enum):
    CLEAR = "clear"
    MORTGAGED = "mortgaged"
    PENDING = "pending"
    DISPUTED = "disputed"
    SEIZED = "seized"


@strawberry.type(description="One appraisal of a piece of collateral.")
class Appraisal:
    id: strawberry.ID
    value: decimal.Decimal = strawberry.field(description="Appraised value in CNY, two decimals.")
    appraised_on: datetime.date
    appraiser: str
    recorded_at: datetime.datetime

    @classmethod
    def from_row(cls, row: AppraisalRow) -> Appraisal:
        return cls(
            id=strawberry.ID(str(row.id)),
            value=money(row.value),
            appraised_on=row.appraised_on,
            appraiser=row.appraiser,
            recorded_at=row.recorded_at,
        )


@strawberry.type(description="Property, a vehicle, equipment or a deposit pledged by a customer.")
class Collateral:
    id: strawberry.ID
    customer_id: strawberry.ID
    kind: CollateralKind
    description: str
    location: str
    region_code: str | None
    region_name: str | None
    area_m2: decimal.Decimal | None = strawberry.field(description="Area in square metres, two decimals.")
    appraised_value: decimal.Decimal = strawberry.field(
        description="The latest appraisal's value in CNY, two decimals."
    )
    appraised_on: datetime.date
    title_status: TitleStatus
    lien_order: int = strawberry.field(description="1 for a first lien, 2 for a second, and so on.")
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @classmethod
    def from_row(cls, row: CollateralRow) -> Collateral:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)),
            kind=CollateralKind(row.kind),
            description=row.description,
            location=row.location,
            region_code=row.region_code,
            region_name=region_name(row.region_code) or None,
            area_m2=optional_money(row.area_m2),
            appraised_value=money(row.appraised_value),
            appraised_on=row.appraised_on,
            title_status=TitleStatus(row.title_status),
            lien_order=row.lien_order,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Every appraisal, newest first.")
    async def appraisals(self, info: Info[GraphQLContext, None]) -> list[Appraisal]:
        rows = await info.context.loaders.appraisals_by_collateral.load(uuid.UUID(self.id))
        return [Appraisal.from_row(row) for row in rows]

    @strawberry.field(description="The loans this collateral secures; each has its loanToValue.")
    async def loans(
        self, info: Info[GraphQLContext, None]
    ) -> list[Annotated[Loan, strawberry.lazy("tenantcrm.graphql.loans")]]:
        from tenantcrm.graphql.loans import Loan  # loans.py imports this module

        rows = await info.context.loaders.loans_by_collateral.load(uuid.UUID(self.id))
        return [Loan.from_row(row) for row in rows]


@strawberry.input
class CreateCollateralInput:
    kind: CollateralKind
    description: str = ""
    location: str = ""
    region_code: str | None = None
    area_m2: decimal.Decimal | None = None
    appraised_value: decimal.Decimal = strawberry.field(description="The first appraisal's value in CNY.")
    appraised_on: datetime.date | None = strawberry.field(default=None, description="Today when left out.")
    appraiser: str = ""
    title_status: TitleStatus = TitleStatus.CLEAR
    lien_order: int = 1


@strawberry.input(description="Only the fields given are changed; the value changes by addAppraisal.")
class UpdateCollateralInput:
    kind: CollateralKind | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    location: str | None = strawberry.UNSET
    region_code: str | None = strawberry.UNSET
    area_m2: decimal.Decimal | None = strawberry.UNSET
    title_status: TitleStatus | None = strawberry.UNSET
    lien_order: int | None = strawberry.UNSET


@strawberry.input
class AppraisalInput:
    appraised_value: decimal.Decimal
    appraised_on: datetime.date | None = strawberry.field(default=None, description="Today when left out.")
    appraiser: str = ""


CollateralResult = Annotated[
    Collateral | InputError | NotFoundError | PermissionError, strawberry.union("CollateralResult")
]


@strawberry.type
class CollateralQueries:
    @strawberry.field(description="One piece of collateral, or null when there is none with this id.")
    async def collateral(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> Collateral | None:
        ctx = info.context
        service = CollateralService(ctx.session, ctx.principal)
        try:
            row = await ctx.run(lambda: service.get(str(id)))
        except CollateralNotFound:
            return None
        return Collateral.from_row(row)


@strawberry.type
class CollateralMutations:
    @strawberry.mutation(
        description="New collateral of a customer with its first appraisal; needs loans.write."
    )
    async def create_collateral(
        self, info: Info[GraphQLContext, None], customer_id: strawberry.ID, input: CreateCollateralInput
    ) -> CollateralResult:
        ctx = info.context
        service = CollateralService(ctx.session, ctx.principal)
        try:
            row = await ctx.write(lambda: service.create(str(customer_id), input_values(input)))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CustomerNotFound:
            return NotFoundError(message="customer not found", id=customer_id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Collateral.from_row(row)

    @strawberry.mutation(description="Change what describes the collateral; needs loans.write.")
    async def update_collateral(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: UpdateCollateralInput
    ) -> CollateralResult:
        ctx = info.context
        service = CollateralService(ctx.session, ctx.principal)
        try:
            row = await ctx.write(lambda: service.update(str(id), input_values(input)))
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CollateralNotFound:
            return NotFoundError(message="collateral not found", id=id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Collateral.from_row(row)

    @strawberry.mutation(
        description="Record an appraisal; the latest by date becomes the collateral's value. "
        "Needs loans.write."
    )
    async def add_appraisal(
        self, info: Info[GraphQLContext, None], collateral_id: strawberry.ID, input: AppraisalInput
    ) -> CollateralResult:
        ctx = info.context
        service = CollateralService(ctx.session, ctx.principal)

        async def appraise() -> CollateralRow:
            await service.add_appraisal(str(collateral_id), input_values(input))
            return await service.get(str(collateral_id))

        try:
            row = await ctx.write(appraise)
        except InvalidInput as invalid:
            return InputError.from_invalid(invalid)
        except CollateralNotFound:
            return NotFoundError(message="collateral not found", id=collateral_id)
        except PermissionDenied as denied:
            return PermissionError.from_denied(denied)
        return Collateral.from_row(row)
