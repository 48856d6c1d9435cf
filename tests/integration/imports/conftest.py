"""A tenant of the test's own to import into, and helpers to run and inspect imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantcrm.auth.permissions import Principal
from tenantcrm.customers.models import Customer
from tenantcrm.database import Database
from tenantcrm.imports.models import ImportJob, ImportRow
from tenantcrm.imports.service import ImportService, run_import
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.settings import REPO_ROOT, Settings
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant
from tests.conftest import TenantFixture, make_tenant, principal_of

SAMPLES = REPO_ROOT.parent / "shared" / "samples"  # beside the project, as DESIGN.md says


@dataclass
class Shop:
    """One tenant and its admin, with shortcuts over the import engine."""

    db: Database
    settings: Settings
    fixture: TenantFixture
    admin: Principal

    @property
    def tenant(self) -> Tenant:
        return self.fixture.tenant

    @property
    def ring(self) -> Any:
        return master_key_ring(self.settings)

    @property
    def cipher(self) -> Any:
        return cipher_source(self.db, self.ring, self.tenant)

    async def run(
        self, content: bytes, name: str = "sheet.xlsx", *, principal: Principal | None = ..., **options: Any
    ) -> ImportJob:
        acting = self.admin if principal is ... else principal
        return await run_import(self.db, self.cipher, self.tenant, acting, name, content, **options)

    def service(self, session: Any, principal: Principal | None = ...) -> ImportService:
        return ImportService(session, self.admin if principal is ... else principal, self.cipher)

    async def count(self, model: Any, *where: Any) -> int:
        async with tenant_session(self.db, self.tenant) as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    async def customers(self) -> list[Customer]:
        async with tenant_session(self.db, self.tenant) as session:
            return list(await session.scalars(select(Customer).order_by(Customer.name, Customer.id)))

    async def rows(self, job: ImportJob) -> list[ImportRow]:
        async with tenant_session(self.db, self.tenant) as session:
            return list(
                await session.scalars(
                    select(ImportRow).where(ImportRow.job_id == job.id).order_by(ImportRow.row_number)
                )
            )

    async def job(self, job_id: Any) -> ImportJob:
        async with tenant_session(self.db, self.tenant) as session:
            job = await session.get(ImportJob, job_id)
            assert job is not None
            return job


@pytest.fixture
async def shop(lifecycle, db: Database, settings: Settings) -> Shop:
    fixture = await make_tenant(lifecycle, "shop")
    return Shop(db, settings, fixture, await principal_of(db, fixture.tenant, fixture.admin_email))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
