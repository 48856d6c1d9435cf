"""Pieces the capability modules share: page info, page-size checks, input values, decimal places."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import strawberry

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.graphql.errors import InputError, NotFoundError, PermissionError, PublicError
from tenantcrm.validation import InvalidInput

if TYPE_CHECKING:
    from tenantcrm.graphql.context import GraphQLContext

T = TypeVar("T")
Refusal = InputError | NotFoundError | PermissionError
REFUSALS = (InputError, NotFoundError, PermissionError)

MAX_PAGE_SIZE = 100
NO_ID = strawberry.ID("")  # write_or_refuse's default: a write that names no record
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def check_page_size(value: int | None, argument: str) -> None:
    if value is not None and not 1 <= value <= MAX_PAGE_SIZE:
        raise PublicError(f"{argument} must be between 1 and {MAX_PAGE_SIZE}")


def input_values(data: object) -> dict[str, object]:
    """The fields a client gave, snake_case, enums as their stored text; UNSET ones left out."""
    values: dict[str, object] = {}
    for name, value in vars(data).items():
        if value is strawberry.UNSET:
            continue
        if isinstance(value, list):
            value = [item.value if isinstance(item, enum.Enum) else item for item in value]
        values[name] = value.value if isinstance(value, enum.Enum) else value
    return values


def money(value: Decimal) -> Decimal:
    """Two decimals always: sums computed in SQL or Python may come back as 0 or 12.5."""
    return value.quantize(CENT)


def optional_money(value: Decimal | None) -> Decimal | None:
    return None if value is None else money(value)


def rate(value: Decimal) -> Decimal:
    """Six decimals, as stored: a rate just validated ("0.049") reads like one read back."""
    return value.quantize(RATE_PLACES)


async def write_or_refuse(
    ctx: GraphQLContext,
    work: Callable[[], Awaitable[T]],
    *,
    not_found: type[Exception] | tuple[type[Exception], ...] = (),
    what: str = "",
    id: strawberry.ID = NO_ID,
) -> T | Refusal:
    """Run a mutation's write; refused input, a missing `what` (named by `id`) or a missing
    permission come back as the typed error, with nothing written. A write that names no record
    leaves `not_found` out."""
    try:
        return await ctx.write(work)
    except InvalidInput as invalid:
        return InputError.from_invalid(invalid)
    except not_found:
        return NotFoundError(message=f"{what} not found", id=id)
    except PermissionDenied as denied:
        return PermissionError.from_denied(denied)
