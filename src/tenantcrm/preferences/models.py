"""The single-row tenant_settings table of a tenant schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, SmallInteger, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tenantcrm.tenancy.models import TenantBase


class TenantPreferences(TenantBase):
    __tablename__ = "tenant_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    contact_interval_days: Mapped[int] = mapped_column(Integer, default=30)
    key_contact_interval_days: Mapped[int] = mapped_column(Integer, default=14)
    complaint_response_hours: Mapped[int] = mapped_column(Integer, default=48)
    default_locale: Mapped[str] = mapped_column(Text, default="zh_CN")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
