"""Named permissions, the built-in roles, and the principal that carries them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tenantcrm.tenancy.tenant import Tenant

CUSTOMERS_READ = "customers.read"
CUSTOMERS_WRITE = "customers.write"

ALL_PERMISSIONS = frozenset(
    {
        CUSTOMERS_READ,
        CUSTOMERS_WRITE,
        "pii.reveal",
        "loans.write",
        "loans.classify",
        "risk.manage",
        "segments.manage",
        "export",
        "import",
        "admin.users",
        "admin.roles",
        "admin.retention",
        "audit.read",
        "api_tokens.manage",
    }
)

BUILT_IN_ROLES: dict[str, frozenset[str]] = {
    "admin": ALL_PERMISSIONS,
    "manager": frozenset(
        {
            CUSTOMERS_READ,
            CUSTOMERS_WRITE,
            "pii.reveal",
            "loans.write",
            "segments.manage",
            "export",
            "import",
            "api_tokens.manage",
        }
    ),
    "loan_officer": frozenset({CUSTOMERS_READ, CUSTOMERS_WRITE, "loans.write", "import"}),
    "risk_officer": frozenset(
        {CUSTOMERS_READ, "loans.classify", "risk.manage", "segments.manage", "pii.reveal"}
    ),
    "auditor": frozenset({CUSTOMERS_READ, "audit.read"}),
    "viewer": frozenset({CUSTOMERS_READ}),
}


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
    locale: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(permission)


def permissions_of(role: str) -> frozenset[str]:
    return BUILT_IN_ROLES.get(role, frozenset())
