"""Schema assembly: the root types compose each capability's queries and mutations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.types import Info

from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.customers import CustomerMutations, CustomerQueries
from tenantcrm.graphql.errors import should_mask
from tenantcrm.settings import REPO_ROOT

SDL_PATH: Path = REPO_ROOT / "graphql" / "schema.graphql"
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000


@strawberry.type
class Viewer:
    email: str
    display_name: str
    role: str
    tenant_slug: str
    permissions: list[str]


@strawberry.type
class ViewerQueries:
    @strawberry.field(description="The user the API token acts for.")
    def viewer(self, info: Info[GraphQLContext, None]) -> Viewer:
        p = info.context.principal
        return Viewer(
            email=p.email,
            display_name=p.display_name,
            role=p.role,
            tenant_slug=p.tenant.slug,
            permissions=sorted(p.permissions),
        )


@strawberry.type
class Query(CustomerQueries, ViewerQueries):
    pass


@strawberry.type
class Mutation(CustomerMutations):
    pass


class RollBackOnError(SchemaExtension):
    """Any reported error rolls the request's transaction back: nothing half-written."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            context = self.execution_context.context
            if isinstance(context, GraphQLContext):
                context.failed = True


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    # Factories, not instances: extensions keep per-request state, so each request gets its own.
    extensions: list = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        RollBackOnError,
        lambda: MaskErrors(should_mask_error=should_mask),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
