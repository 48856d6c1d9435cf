"""The import_jobs and import_rows tables of a tenant schema (migration t0005)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase

UPLOADED, MAPPED, STAGING, STAGED = "uploaded", "mapped", "staging", "staged"
COMMITTING, DONE, FAILED, CANCELLED = "committing", "done", "failed", "cancelled"
RUNNING = (STAGING, COMMITTING)
FINISHED = (DONE, FAILED, CANCELLED)
VALID, INVALID, DUPLICATE = "valid", "invalid", "duplicate"
MODES = ("skip_invalid", "all_or_nothing")
KINDS = ("customers", "loans")


class ImportJob(TenantBase):
    __tablename__ = "import_jobs"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text, default="customers")
    file_name: Mapped[str] = mapped_column(Text)
    # The upload encrypted with the tenant's data key (it holds identity numbers); dropped at the end.
    file_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    pii_key_version: Mapped[int | None] = mapped_column(Integer)
    sheet: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # {"header_row": n, "columns": {"<index>": "<target>"}}
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    mode: Mapped[str] = mapped_column(Text, default="skip_invalid")
    status: Mapped[str] = mapped_column(Text, default=UPLOADED)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    staged_rows: Mapped[int] = mapped_column(Integer, default=0)
    valid_rows: Mapped[int] = mapped_column(Integer, default=0)
    invalid_rows: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_rows: Mapped[int] = mapped_column(Integer, default=0)
    # A message id (English), translated where it is shown; never a value from the file.
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def problem_rows(self) -> int:
        return self.invalid_rows + self.duplicate_rows

    @property
    def progress(self) -> int:
        """Percent of the file's rows staged (0-100)."""
        if self.status in (STAGED, COMMITTING, DONE):
            return 100
        if not self.total_rows:
            return 0
        return min(100, self.staged_rows * 100 // self.total_rows)

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ImportRow(TenantBase):
    __tablename__ = "import_rows"

    job_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("import_jobs.id"), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    pii_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    national_id_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
