"""Fixtures of the PII suite: the settings' master key ring and tenants that have keys."""

from __future__ import annotations

import pytest

from tenantcrm.database import Database
from tenantcrm.pii.keys import MasterKeyRing, master_key_ring
from tenantcrm.pii.store import create_tenant_keys
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.tenant import Tenant
from tests.conftest import make_tenant


@pytest.fixture(scope="session")
def ring(settings: Settings) -> MasterKeyRing:
    """The ring the app itself builds from the test settings (a key generated in data_dir)."""
    return master_key_ring(settings)


async def with_keys(db: Database, ring: MasterKeyRing, tenant: Tenant) -> Tenant:
    async with db.admin_engine.begin() as conn:
        await create_tenant_keys(conn, ring, tenant.id)
    return tenant


@pytest.fixture
async def keyed_tenant(db: Database, ring: MasterKeyRing, lifecycle: TenantLifecycle) -> Tenant:
    """A tenant of one test alone, with version 1 of its keys."""
    return await with_keys(db, ring, (await make_tenant(lifecycle, "pii")).tenant)
