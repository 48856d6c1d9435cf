"""PreferencesService: read the tenant's working preferences; admins change them, audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import ADMIN_USERS, Principal
from tenantcrm.customers.inputs import clean_text
from tenantcrm.messages import N_
from tenantcrm.preferences.models import TenantPreferences
from tenantcrm.validation import FieldError, InvalidInput

LOCALES = ("zh_CN", "en")
LIMITS = {
    "contact_interval_days": (1, 3650),
    "key_contact_interval_days": (1, 3650),
    "complaint_response_hours": (1, 8760),
}


async def load_preferences(session: AsyncSession) -> TenantPreferences:
    """The tenant's preferences (every signed-in principal may read them)."""
    found = await session.scalar(select(TenantPreferences).where(TenantPreferences.id == 1))
    return found if found is not None else TenantPreferences(id=1)


class PreferencesService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def get(self) -> TenantPreferences:
        """The settings as their page shows them to those who may change them (services read them
        through load_preferences)."""
        self.principal.require(ADMIN_USERS)
        return await load_preferences(self.session)

    async def update(self, data: Mapping[str, Any]) -> TenantPreferences:
        """Change the given preferences; all refused or all saved."""
        self.principal.require(ADMIN_USERS)
        errors: list[FieldError] = []
        clean: dict[str, Any] = {}
        for field, (low, high) in LIMITS.items():
            if field not in data:
                continue
            raw = clean_text(data[field])
            if not raw.isdigit() or not low <= int(raw) <= high:
                errors.append(
                    FieldError(
                        field,
                        "out_of_range",
                        N_("Enter a whole number from {low} to {high}."),
                        params={"low": str(low), "high": str(high)},
                    )
                )
            else:
                clean[field] = int(raw)
        if "default_locale" in data:
            locale = clean_text(data["default_locale"])
            if locale not in LOCALES:
                errors.append(
                    FieldError("default_locale", "invalid_choice", N_("Choose one of the listed values."))
                )
            clean["default_locale"] = locale
        if errors:
            raise InvalidInput(errors)
        preferences = await self.session.scalar(
            select(TenantPreferences).where(TenantPreferences.id == 1).with_for_update()
        )
        assert preferences is not None  # seeded by migration t0005
        before = {name: getattr(preferences, name) for name in clean}
        for name, value in clean.items():
            setattr(preferences, name, value)
        if changes := audit.diff(before, clean):
            preferences.updated_at = datetime.now(UTC)
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="tenant_settings",
                entity_id=None,
                changes=changes,
            )
        return preferences
