"""The saved_views table of a tenant schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class SavedView(TenantBase):
    __tablename__ = "saved_views"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID, ForeignKey("users.id"))
    list_name: Mapped[str] = mapped_column("list", Text)
    name: Mapped[str] = mapped_column(Text)
    columns: Mapped[list[str]] = mapped_column(JSONB)
    # Fixed vocabularies only (risk level, status): never a search term, which may be personal data.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sort: Mapped[str] = mapped_column(Text)
    descending: Mapped[bool] = mapped_column(Boolean)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
