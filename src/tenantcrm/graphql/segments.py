"""GraphQL of segments: preview a filter tree, saved segments with their count, page and breakdown."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from tenantcrm.auth.service import active_users
from tenantcrm.customers.service import CustomerFilter
from tenantcrm.graphql.common import REFUSALS, check_page_size, input_values, write_or_refuse
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.customers import CustomerConnection, UserRef
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError, PublicError
from tenantcrm.segments.filter import Node, parse_filter, to_raw
from tenantcrm.segments.models import Segment as SegmentRow
from tenantcrm.segments.service import SegmentNotFound, SegmentService
from tenantcrm.validation import InvalidInput

INVALID_FILTER = "INVALID_FILTER"


@strawberry.enum(description="What a segment can be broken down by.")
class SegmentField(enum.Enum):
    KIND = "kind"
    STATUS = "status"
    REGION_CODE = "regionCode"
    RISK_LEVEL = "riskLevel"
    CREDIT_GRADE = "creditGrade"
    CLASSIFICATION = strawberry.enum_value(
        "classification", description="The class of the customer's worst live loan."
    )
    ARREARS_BUCKET = strawberry.enum_value(
        "arrearsBucket", description="The arrears bucket of the customer's worst live loan."
    )
    PRODUCT = strawberry.enum_value(
        "product", description="Once per product the customer has a loan of: slices may overlap."
    )
    OWNER_ID = "ownerId"


@strawberry.type(description="One group of a breakdown.")
class SegmentSlice:
    key: str = strawberry.field(
        description="The stored value (a region code, a grade, a class, a product, an owner's id), or "
        '"none" for customers without one.'
    )
    count: int
    label: str | None = strawberry.field(description="The owner's name when broken down by owner.")


class InvalidFilter(PublicError):
    """A filter tree refused by parse_filter: the first problem, where it is, and its code."""

    def __init__(self, invalid: InvalidInput) -> None:
        error = invalid.errors[0]
        params = error.params or {}
        super().__init__(
            f"Invalid filter: {error.text()}",
            extensions={"code": INVALID_FILTER, "reason": error.code, "path": params.get("path", "$")},
        )


def _parsed(filter: JSON) -> Node:
    """The validated tree, or the INVALID_FILTER error (reported before anything is read)."""
    try:
        return parse_filter(filter)
    except InvalidInput as invalid:
        raise InvalidFilter(invalid) from None


def _service(info: Info[GraphQLContext, None]) -> SegmentService:
    ctx = info.context
    return SegmentService(ctx.session, ctx.principal, ctx.cipher)


async def _count(info: Info[GraphQLContext, None], node: Node) -> int:
    service = _service(info)
    return await info.context.run(lambda: service.count(node))


async def _customers(
    info: Info[GraphQLContext, None], node: Node, first: int | None, after: str | None
) -> CustomerConnection:
    check_page_size(first, "first")
    service = _service(info)
    page = await info.context.run(lambda: service.customers(node, first=first, after=after))
    return CustomerConnection.from_page(page, CustomerFilter(condition=service.condition(node)))


async def _breakdown(info: Info[GraphQLContext, None], node: Node, by: SegmentField) -> list[SegmentSlice]:
    service = _service(info)
    slices = await info.context.run(lambda: service.breakdown(node, by.value))
    return [SegmentSlice(key=s.key, count=s.count, label=s.label) for s in slices]


@strawberry.type(description="A filter tree's customers, within the viewer's record scope, masked.")
class SegmentPreview:
    tree: strawberry.Private[Node]

    @strawberry.field(description="The validated filter as it would be saved.")
    def filter(self) -> JSON:
        return to_raw(self.tree)

    @strawberry.field(description="How many customers match.")
    async def count(self, info: Info[GraphQLContext, None]) -> int:
        return await _count(info, self.tree)

    @strawberry.field(description="The matching customers, newest first.")
    async def customers(
        self, info: Info[GraphQLContext, None], first: int | None = None, after: str | None = None
    ) -> CustomerConnection:
        return await _customers(info, self.tree, first, after)

    @strawberry.field(description="The matching customers grouped by one field, largest group first.")
    async def breakdown(self, info: Info[GraphQLContext, None], by: SegmentField) -> list[SegmentSlice]:
        return await _breakdown(info, self.tree, by)


@strawberry.type(description="A saved filter tree: the owner's own, or shared with the owner's team.")
class Segment:
    id: strawberry.ID
    name: str
    description: str
    shared: bool = strawberry.field(description="Visible to the owner's team (read-only for them).")
    owner: UserRef | None
    filter: JSON
    can_edit: bool = strawberry.field(description="Whether the viewer may change or delete it.")
    created_at: datetime.datetime
    updated_at: datetime.datetime
    raw: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_row(cls, row: SegmentRow, names: dict[uuid.UUID, str], service: SegmentService) -> Segment:
        owner = (
            UserRef(id=strawberry.ID(str(row.owner_id)), display_name=names[row.owner_id])
            if row.owner_id in names
            else None
        )
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            description=row.description,
            shared=row.shared,
            owner=owner,
            filter=row.filter,
            can_edit=service.can_edit(row),
            created_at=row.created_at,
            updated_at=row.updated_at,
            raw=row.filter,
        )

    @strawberry.field(description="How many customers match now. One statement per segment.")
    async def count(self, info: Info[GraphQLContext, None]) -> int:
        return await _count(info, _parsed(self.raw))

    @strawberry.field(description="The matching customers, newest first.")
    async def customers(
        self, info: Info[GraphQLContext, None], first: int | None = None, after: str | None = None
    ) -> CustomerConnection:
        return await _customers(info, _parsed(self.raw), first, after)

    @strawberry.field(description="The matching customers grouped by one field, largest group first.")
    async def breakdown(self, info: Info[GraphQLContext, None], by: SegmentField) -> list[SegmentSlice]:
        return await _breakdown(info, _parsed(self.raw), by)


async def _owner_names(info: Info[GraphQLContext, None]) -> dict[uuid.UUID, str]:
    """Owners' names for any number of segments in one read."""
    ctx = info.context
    return dict(await ctx.run(lambda: active_users(ctx.session)))


@strawberry.input
class SegmentInput:
    name: str
    filter: JSON = strawberry.field(
        description='The tree: {"and": [...]}, {"or": [...]}, {"not": {...}} '
        'or {"field": "riskLevel", "op": "eq", "value": "high"}.'
    )
    description: str = ""
    shared: bool = strawberry.field(default=False, description="Share with my team.")


@strawberry.input(description="Only the fields given are changed.")
class UpdateSegmentInput:
    name: str | None = strawberry.UNSET
    filter: JSON | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    shared: bool | None = strawberry.UNSET


@strawberry.type
class SegmentDeleted:
    id: strawberry.ID


SegmentResult = Annotated[
    Segment | InputError | NotFoundError | PermissionError, strawberry.union("SegmentResult")
]
DeleteSegmentResult = Annotated[
    SegmentDeleted | NotFoundError | PermissionError, strawberry.union("DeleteSegmentResult")
]


@strawberry.type
class SegmentQueries:
    @strawberry.field(
        description="Count, page and break down a filter tree without saving it. An invalid tree is an "
        "error with extensions.code INVALID_FILTER and the path of its first problem."
    )
    async def segment_preview(self, info: Info[GraphQLContext, None], filter: JSON) -> SegmentPreview | None:
        return SegmentPreview(tree=_parsed(filter))

    @strawberry.field(description="My saved segments and those shared with my team, by name.")
    async def segments(self, info: Info[GraphQLContext, None]) -> list[Segment]:
        service = _service(info)
        rows = await info.context.run(service.list_segments)
        names = await _owner_names(info) if rows else {}
        return [Segment.from_row(row, names, service) for row in rows]

    @strawberry.field(description="One saved segment, or null when there is none I may see.")
    async def segment(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> Segment | None:
        service = _service(info)
        try:
            row = await info.context.run(lambda: service.get(str(id)))
        except SegmentNotFound:
            return None
        return Segment.from_row(row, await _owner_names(info), service)


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(description="Save a filter tree as a segment of mine. Needs segments.manage.")
    async def save_segment(self, info: Info[GraphQLContext, None], input: SegmentInput) -> SegmentResult:
        service = _service(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.save(input_values(input)),
            not_found=(),  # a new segment names nothing that could be missing
            what="segment",
            id=strawberry.ID(""),
        )
        if isinstance(result, REFUSALS):
            return result
        return Segment.from_row(result, await _owner_names(info), service)

    @strawberry.mutation(description="Change a segment of mine. Needs segments.manage.")
    async def update_segment(
        self, info: Info[GraphQLContext, None], id: strawberry.ID, input: UpdateSegmentInput
    ) -> SegmentResult:
        service = _service(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.update(str(id), input_values(input)),
            not_found=SegmentNotFound,
            what="segment",
            id=id,
        )
        if isinstance(result, REFUSALS):
            return result
        return Segment.from_row(result, await _owner_names(info), service)

    @strawberry.mutation(description="Delete a segment of mine. Needs segments.manage.")
    async def delete_segment(
        self, info: Info[GraphQLContext, None], id: strawberry.ID
    ) -> DeleteSegmentResult:
        service = _service(info)
        result = await write_or_refuse(
            info.context,
            lambda: service.delete(str(id)),
            not_found=SegmentNotFound,
            what="segment",
            id=id,
        )
        if isinstance(result, REFUSALS):
            return result  # type: ignore[return-value]
        return SegmentDeleted(id=id)
