"""The complaints table of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class Complaint(TenantBase):
    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("customers.id"))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("loans.id"))
    kind: Mapped[str] = mapped_column(Text, default="complaint")
    category: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="open")
    resolution: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    respond_by: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def overdue(self, now: datetime) -> bool:
        """Past its response target and still not resolved."""
        return self.status != "resolved" and now > self.respond_by
