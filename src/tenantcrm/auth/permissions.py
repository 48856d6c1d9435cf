"""Named permissions, the built-in roles, and the principal that carries them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tenantcrm.tenancy.tenant import Tenant

CUSTOMERS_READ = "customers.read"
CUSTOMERS_WRITE = "customers.write"
PII_REVEAL = "pii.reveal"
LOANS_WRITE = "loans.write"
LOANS_CLASSIFY = "loans.classify"
RISK_MANAGE = "risk.manage"
SEGMENTS_MANAGE = "segments.manage"
EXPORT = "export"
IMPORT = "import"
ADMIN_USERS = "admin.users"
ADMIN_ROLES = "admin.roles"
ADMIN_RETENTION = "admin.retention"
AUDIT_READ = "audit.read"
API_TOKENS_MANAGE = "api_tokens.manage"

ALL_PERMISSIONS = frozenset(
    {
        CUSTOMERS_READ,
        CUSTOMERS_WRITE,
        PII_REVEAL,
        LOANS_WRITE,
        LOANS_CLASSIFY,
        RISK_MANAGE,
        SEGMENTS_MANAGE,
        EXPORT,
        IMPORT,
        ADMIN_USERS,
        ADMIN_ROLES,
        ADMIN_RETENTION,
        AUDIT_READ,
        API_TOKENS_MANAGE,
    }
)

# Seeded as roles by the tenant migration t0002; tenant admins edit them afterwards.
BUILT_IN_ROLE_NAMES = ("admin", "manager", "loan_officer", "risk_officer", "auditor", "viewer")
RECORD_SCOPES = ("own", "team", "all")


class PermissionDenied(Exception):
    """The principal lacks a permission the operation needs."""

    def __init__(self, permission: str) -> None:
        super().__init__(f"missing permission {permission}")
        self.permission = permission


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, for which tenant, with what rights; built only by sign-in or a token."""

    tenant: Tenant
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    permissions: frozenset[str]
    record_scope: str = "own"
    team_id: uuid.UUID | None = None
    locale: str | None = None
    """The user's own language choice, if any."""
    default_locale: str | None = None
    """The tenant's default language, for users who have not chosen."""

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(permission)
