"""The resolved tenant handed from the registry to the tenant unit of work."""

from __future__ import annotations

import re
from dataclasses import dataclass

ACTIVE = "active"
PROVISIONING = "provisioning"
SUSPENDED = "suspended"
DELETING = "deleting"
# Provisioned ahead of time, at head, with no users and no institution yet (ADR 0014).
SPARE = "spare"
STATUSES = (PROVISIONING, ACTIVE, SUSPENDED, DELETING, SPARE)

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
TENANT_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
# A spare's slug; no institution may take one of this form.
SPARE_SLUG_PATTERN = re.compile(r"^spare-[0-9a-f]{16}$")


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """A tenant's quotas from the registry (p0003); None is no limit."""

    users: int | None = None
    customers: int | None = None
    storage_mb: int | None = None


NO_LIMITS = QuotaLimits()


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    slug: str
    name: str
    status: str
    schema: str
    schema_version: str | None = None
    """The tenant migration the registry records for its schema."""
    limits: QuotaLimits = NO_LIMITS
    """As the registry row read for this request or job had them; enforcement uses these."""

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def schema_for(tenant_id: str) -> str:
    """Schema and role name of a tenant; the id is checked so it is safe to quote into DDL."""
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise ValueError("malformed tenant id")
    return f"t_{tenant_id}"


def spare_slug(tenant_id: str) -> str:
    """The registry slug of the spare of this id."""
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise ValueError("malformed tenant id")
    return f"spare-{tenant_id}"
