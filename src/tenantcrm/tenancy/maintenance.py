"""Refuse a tenant whose schema is behind the code's newest tenant migration, rather than serve it wrong."""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory

from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.tenant import Tenant

RETRY_AFTER_SECONDS = 60


class TenantMaintenance(Exception):
    """The tenant's schema is being migrated: 503 with Retry-After, nothing of it is read."""

    retry_after = RETRY_AFTER_SECONDS


@cache
def _older_revisions() -> frozenset[str]:
    script = ScriptDirectory(str(migrations.MIGRATIONS_DIR / "tenant"))
    head = migrations.head("tenant")
    return frozenset(r.revision for r in script.walk_revisions() if r.revision != head)


def is_behind(schema_version: str | None) -> bool:
    """Never migrated, or at a revision older than this code's head.

    A revision this code does not know is newer (a rolling deploy migrated first): tenant migrations
    are additive, so older code keeps serving it.
    """
    return schema_version is None or schema_version in _older_revisions()


def refuse_if_behind(tenant: Tenant) -> None:
    """Called on the registry row every request reads anyway, before any tenant table is touched."""
    if is_behind(tenant.schema_version):
        raise TenantMaintenance()
