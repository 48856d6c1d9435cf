"""GraphQL of import jobs: their status, progress and row counts (uploads are the import page's)."""

from __future__ import annotations

import datetime
import enum

import strawberry
from strawberry.types import Info

from tenantcrm.graphql.common import check_page_size
from tenantcrm.graphql.context import GraphQLContext
from tenantcrm.imports.models import ImportJob as ImportJobRow
from tenantcrm.imports.service import ImportNotFound, ImportService

PAGE_SIZE = 20


@strawberry.enum
class ImportKind(enum.Enum):
    CUSTOMERS = "customers"
    LOANS = "loans"


@strawberry.enum(
    description="uploaded -> mapped -> staging -> staged -> committing -> done, or failed/cancelled."
)
class ImportStatus(enum.Enum):
    UPLOADED = "uploaded"
    MAPPED = "mapped"
    STAGING = "staging"
    STAGED = "staged"
    COMMITTING = "committing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum
class ImportMode(enum.Enum):
    SKIP_INVALID = "skip_invalid"
    ALL_OR_NOTHING = "all_or_nothing"


@strawberry.type
class ImportProgress:
    rows_done: int = strawberry.field(description="Rows of the file staged so far.")
    total_rows: int
    percent: int


@strawberry.type(description="An import job (uploads are made on the import page, not over the API).")
class ImportJob:
    id: strawberry.ID
    kind: ImportKind
    file_name: str
    status: ImportStatus
    mode: ImportMode
    progress: ImportProgress
    accepted_rows: int = strawberry.field(description="Rows that passed the checks.")
    refused_rows: int = strawberry.field(description="Rows refused: invalid or duplicates.")
    invalid_rows: int
    duplicate_rows: int
    created_rows: int = strawberry.field(description="Records created by the commit.")
    error: str | None = strawberry.field(description="Why the job failed, if it did.")
    created_at: datetime.datetime
    finished_at: datetime.datetime | None

    @classmethod
    def from_row(cls, row: ImportJobRow) -> ImportJob:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=ImportKind(row.kind),
            file_name=row.file_name,
            status=ImportStatus(row.status),
            mode=ImportMode(row.mode),
            progress=ImportProgress(
                rows_done=row.staged_rows, total_rows=row.total_rows, percent=row.progress
            ),
            accepted_rows=row.valid_rows,
            refused_rows=row.problem_rows,
            invalid_rows=row.invalid_rows,
            duplicate_rows=row.duplicate_rows,
            created_rows=row.created_rows,
            error=row.error,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@strawberry.type
class ImportQueries:
    @strawberry.field(description="Import jobs the caller may see, newest first. Needs import.")
    async def import_jobs(
        self, info: Info[GraphQLContext, None], first: int | None = None
    ) -> list[ImportJob]:
        check_page_size(first, "first")
        service = ImportService(info.context.session, info.context.principal, info.context.cipher)
        rows = await info.context.run(lambda: service.list_jobs(first or PAGE_SIZE))
        return [ImportJob.from_row(row) for row in rows]

    @strawberry.field(
        description="One import job, or null when the caller has none with this id. Needs import."
    )
    async def import_job(self, info: Info[GraphQLContext, None], id: strawberry.ID) -> ImportJob | None:
        service = ImportService(info.context.session, info.context.principal, info.context.cipher)
        try:
            row = await info.context.run(lambda: service.get_job(str(id)))
        except ImportNotFound:
            return None
        return ImportJob.from_row(row)
