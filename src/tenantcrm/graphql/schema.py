"""Schema assembly: the root types compose each capability's queries and mutations."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError, OperationType
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionContext, ExecutionResult, Info

from tenantcrm.graphql.collateral import CollateralMutations, CollateralQueries
from tenantcrm.graphql.compiled import CompiledReadFailed, CompiledReads
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.graphql.customers import CustomerMutations, CustomerQueries
from tenantcrm.graphql.dashboard import DashboardQueries
from tenantcrm.graphql.errors import should_mask
from tenantcrm.graphql.imports import ImportQueries
from tenantcrm.graphql.loans import LoanMutations, LoanQueries
from tenantcrm.graphql.relationship import RelationshipMutations, RelationshipQueries
from tenantcrm.graphql.retention import RetentionMutations, RetentionQueries
from tenantcrm.graphql.risk import RiskMutations, RiskQueries
from tenantcrm.graphql.segments import SegmentMutations, SegmentQueries
from tenantcrm.settings import REPO_ROOT

logger = logging.getLogger(__name__)
UNEXPECTED_ERROR = "Unexpected error."  # what MaskErrors says of an error it hides
SDL_PATH: Path = REPO_ROOT / "graphql" / "schema.graphql"
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
CACHED_OPERATIONS = 256  # distinct operation texts kept parsed and validated (LRU, per process)


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
class Query(
    CustomerQueries,
    CollateralQueries,
    LoanQueries,
    RelationshipQueries,
    RiskQueries,
    DashboardQueries,
    ImportQueries,
    SegmentQueries,
    RetentionQueries,
    ViewerQueries,
):
    pass


@strawberry.type
class Mutation(
    CustomerMutations,
    CollateralMutations,
    LoanMutations,
    RelationshipMutations,
    RiskMutations,
    SegmentMutations,
    RetentionMutations,
):
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


class Schema(strawberry.Schema):
    """Logs errors without the query text or messages: both may carry customer data. Queries of
    the customer list are answered by compiled reads (ADR 0015) when they can be."""

    compiled_reads: CompiledReads | None = None

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        compiled = self.compiled_reads
        if compiled is not None and query is not None and isinstance(context_value, GraphQLContext):
            try:
                data = await compiled.answer(context_value, query, operation_name, variable_values)
            except CompiledReadFailed as failed:  # as a resolver's unexpected error: masked, logged
                name, at = type(failed.__cause__).__name__, failed.key
                logger.error("graphql error %s in operation %s at %s", name, operation_name or "-", at)
                context_value.failed = True
                return ExecutionResult(data=None, errors=[GraphQLError(UNEXPECTED_ERROR, path=[at])])
            if data is not None:
                return ExecutionResult(data=data, errors=None)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        operation = execution_context.operation_name if execution_context else None
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError):
                continue  # the client's own mistake (syntax, validation, variables): not ours to log
            logger.error(
                "graphql error %s in operation %s at %s",
                type(original).__name__,
                operation or "-",
                ".".join(str(p) for p in error.path or []) or "-",
            )


def build_schema(*, introspection: bool = True) -> strawberry.Schema:
    # The limits' validation rules are made once: the validation cache keys on the document and the
    # rules, so an operation is parsed and validated once per process, not on every request
    # (validation was a fifth of a customer list's time, issue 8).
    limits = [
        *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
        *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    ]
    # Factories, not instances: extensions keep per-request state, so each request gets its own.
    extensions: list = [
        lambda: AddValidationRules(limits),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: ParserCache(maxsize=CACHED_OPERATIONS),
        lambda: ValidationCache(maxsize=CACHED_OPERATIONS),
        RollBackOnError,
        lambda: MaskErrors(should_mask_error=should_mask),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    schema = Schema(query=Query, mutation=Mutation, extensions=extensions)
    schema.compiled_reads = CompiledReads(schema._schema, limits, MAX_TOKENS, CACHED_OPERATIONS)
    return schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
