"""Typed errors returned by mutations, and which raised errors reach the client unmasked."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.service import InvalidCursor
from tenantcrm.tenancy.quotas import QuotaExceeded
from tenantcrm.validation import InvalidInput


def camel(name: str) -> str:
    # Only each part's first letter: "due.threshold" stays "Due.threshold" (title() would not).
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@strawberry.type
class FieldError:
    field: str
    code: str
    message: str


@strawberry.type
class InputError:
    message: str
    fields: list[FieldError]

    @classmethod
    def from_invalid(cls, invalid: InvalidInput) -> InputError:
        return cls(
            message="The input was refused; nothing was saved.",
            fields=[FieldError(field=camel(e.field), code=e.code, message=e.text()) for e in invalid.errors],
        )


@strawberry.type
class NotFoundError:
    message: str
    id: strawberry.ID


@strawberry.type
class PermissionError:
    message: str
    permission: str

    @classmethod
    def from_denied(cls, denied: PermissionDenied) -> PermissionError:
        return cls(message=f"missing permission {denied.permission}", permission=denied.permission)


@strawberry.type(description="The institution is at one of its quotas; nothing was saved.")
class QuotaExceededError:
    message: str
    quota: str = strawberry.field(description="users, customers or storageMb")
    limit: int
    used: int = strawberry.field(description="What the institution uses now (MB for storageMb).")

    @classmethod
    def from_exceeded(cls, exceeded: QuotaExceeded) -> QuotaExceededError:
        return cls(
            message=exceeded.errors[0].text(),
            quota=camel(exceeded.resource),
            limit=exceeded.limit,
            used=exceeded.usage,
        )


class PublicError(GraphQLError):
    """An error whose message is written for API users and is safe to show."""


VISIBLE_ERRORS = (PublicError, PermissionDenied, InvalidCursor)


def should_mask(error: GraphQLError) -> bool:
    """Mask what our code raised unexpectedly; keep errors about the client's own request
    (syntax, validation, variable values), which carry no server detail."""
    original = error.original_error
    if original is None or isinstance(original, VISIBLE_ERRORS):
        return False
    return error.path is not None
