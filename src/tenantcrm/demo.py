"""The demo tenant for `make run`: created or refreshed with realistic sample customers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from faker import Faker
from sqlalchemy import func, select

from tenantcrm.auth.service import (
    create_api_token,
    principal_for_user,
    revoke_api_tokens_named,
    upsert_user,
)
from tenantcrm.customers.models import Customer
from tenantcrm.customers.regions import REGIONS
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import PROVISIONING
from tenantcrm.validation import InvalidInput

DEMO_SLUG = "demo"
DEMO_NAME = "示例小额贷款有限公司"
DEMO_ADMIN = "admin@demo.example"
DEMO_OFFICER = "officer@demo.example"
DEMO_PASSWORD = "demo-password"  # a public demo account, documented in README
DEMO_CUSTOMERS = 240


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    admin_email: str
    officer_email: str
    password: str
    api_token: str


async def ensure_demo_tenant(db: Database, settings: Settings) -> DemoTenant:
    lifecycle = TenantLifecycle(db, settings)
    try:
        tenant = await lifecycle.get(DEMO_SLUG)
        if tenant.status == PROVISIONING:
            raise ProvisioningError("resume")
    except ProvisioningError:
        await lifecycle.create(
            DEMO_SLUG, name=DEMO_NAME, admin_email=DEMO_ADMIN, admin_password=DEMO_PASSWORD
        )
        tenant = await lifecycle.get(DEMO_SLUG)
    if not tenant.active:
        tenant = await lifecycle.set_status(DEMO_SLUG, "active")
    # An existing demo tenant from an older checkout is brought to the current schema.
    (outcome,) = await lifecycle.migrate(DEMO_SLUG)
    if outcome.status == "failed":
        raise ProvisioningError(f"demo tenant migration failed: {outcome.error}")

    async with tenant_session(db, tenant) as session:
        admin = await upsert_user(
            session, email=DEMO_ADMIN, password=DEMO_PASSWORD, role="admin", display_name="管理员 Admin"
        )
        officer = await upsert_user(
            session, email=DEMO_OFFICER, password=DEMO_PASSWORD, role="loan_officer", display_name="王经理"
        )
        owners = [await principal_for_user(session, tenant, user.id) for user in (admin, officer)]
        existing = await session.scalar(select(func.count()).select_from(Customer)) or 0
        ring = master_key_ring(settings)
        for owner, created_at, values in _sample_customers(DEMO_CUSTOMERS - existing, owners):
            # Through the service, as its owner: PII encrypted, masked and indexed, writes audited.
            service = CustomerService(
                session,
                owner,
                cipher_source(db, ring, tenant),
            )
            try:
                customer = await service.create_customer(values)
            except InvalidInput:
                continue  # a generated identity number that is already taken
            customer.created_at = customer.updated_at = created_at
        await revoke_api_tokens_named(session, admin, "demo")
        token = await create_api_token(session, tenant, admin, "demo")
    return DemoTenant(DEMO_SLUG, DEMO_ADMIN, DEMO_OFFICER, DEMO_PASSWORD, token)


def _sample_customers(count: int, owners: list) -> list[tuple[object, datetime, dict[str, object]]]:
    """(owner, created at, form values) of realistic customers, the same on every run."""
    fake = Faker("zh_CN")
    rng = random.Random(20261123)
    fake.seed_instance(20261123)
    now = datetime.now(UTC)
    samples = []
    for _ in range(max(count, 0)):
        enterprise = rng.random() < 0.2
        income = Decimal(round(rng.lognormvariate(9.6, 0.6), -2)).quantize(Decimal("0.01"))
        values: dict[str, object] = {
            "kind": "enterprise" if enterprise else "individual",
            "name": fake.company() if enterprise else fake.name(),
            "region_code": rng.choice(list(REGIONS)),
            "monthly_income": str(income * (20 if enterprise else 1)) if rng.random() < 0.9 else None,
            "risk_level": rng.choices(["low", "medium", "high"], [70, 22, 8])[0],
            "status": rng.choices(["prospect", "active", "settled", "closed"], [25, 55, 15, 5])[0],
            "phone": fake.phone_number(),
            "address": fake.address(),
        }
        if not enterprise:
            values["national_id"] = fake.ssn()
        created_at = now - timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440))
        samples.append((rng.choice(owners), created_at, values))
    return samples
