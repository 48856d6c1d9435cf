"""CollateralService: collateral of customers in scope, its appraisals and loan-to-value."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.permissions import CUSTOMERS_READ, LOANS_WRITE, Principal
from tenantcrm.collateral.inputs import validate_appraisal, validate_collateral
from tenantcrm.collateral.models import Appraisal, Collateral
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService, in_customer_scope
from tenantcrm.validation import parse_uuid

RATIO = Decimal("0.0001")


class CollateralNotFound(Exception):
    """No such collateral on a customer this principal may see."""


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator to four places (0.6543 is 65.43%), None when undefined."""
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATIO)


# Where a pledged home is describes where its owner lives: the append-only chain keeps only that it
# changed (retention and erasure clear these columns, and cannot reach the chain).
AUDIT_REDACTED = ("description", "location")


class CollateralService:
    """Collateral hangs off a customer: whoever may see the customer may see it; writing it is
    credit work (loans.write)."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def list_for_customers(
        self, customer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Collateral]]:
        """Collateral of many customers in one query (GraphQL loads it per page of customers)."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(Collateral)
                .join(Customer, Customer.id == Collateral.customer_id)
                .where(Collateral.customer_id.in_(customer_ids))
                .order_by(Collateral.created_at, Collateral.id),
                self.principal,
            )
        )
        found: dict[uuid.UUID, list[Collateral]] = {customer_id: [] for customer_id in customer_ids}
        for row in rows:
            found[row.customer_id].append(row)
        return found

    async def list_for_customer(self, customer_id: str | uuid.UUID) -> list[Collateral]:
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        return (await self.list_for_customers([customer.id]))[customer.id]

    async def get(self, collateral_id: str | uuid.UUID, *, for_update: bool = False) -> Collateral:
        self.principal.require(CUSTOMERS_READ)
        parsed = parse_uuid(collateral_id)
        statement = in_customer_scope(
            select(Collateral)
            .join(Customer, Customer.id == Collateral.customer_id)
            .where(Collateral.id == parsed),
            self.principal,
        )
        if for_update:
            statement = statement.with_for_update(of=Collateral)
        found = await self.session.scalar(statement) if parsed else None
        if found is None:
            raise CollateralNotFound
        return found

    async def create(self, customer_id: str | uuid.UUID, data: Mapping[str, Any]) -> Collateral:
        """New collateral with its first appraisal."""
        self.principal.require(LOANS_WRITE)
        customer = await CustomerService(self.session, self.principal).get_customer(customer_id)
        values = validate_collateral(data)
        appraiser = values.pop("appraiser")
        collateral = Collateral(id=uuid.uuid4(), customer_id=customer.id, **values)
        self.session.add(collateral)
        await self.session.flush()
        self.session.add(
            Appraisal(
                collateral_id=collateral.id,
                value=values["appraised_value"],
                appraised_on=values["appraised_on"],
                appraiser=appraiser,
                recorded_by=self.principal.user_id,
            )
        )
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="collateral",
            entity_id=str(collateral.id),
            changes=audit.diff(
                {}, {"customer_id": customer.id, "appraiser": appraiser, **values}, redact=AUDIT_REDACTED
            ),
        )
        return collateral

    async def update(self, collateral_id: str | uuid.UUID, data: Mapping[str, Any]) -> Collateral:
        """Change description fields; the value changes only by a new appraisal."""
        self.principal.require(LOANS_WRITE)
        collateral = await self.get(collateral_id, for_update=True)
        values = validate_collateral(
            {k: v for k, v in data.items() if k not in ("appraised_value", "appraised_on", "appraiser")},
            partial=True,
        )
        before = {name: getattr(collateral, name) for name in values}
        for name, value in values.items():
            setattr(collateral, name, value)
        if changes := audit.diff(before, values, redact=AUDIT_REDACTED):
            collateral.updated_at = datetime.now(UTC)
            await audit.record(
                self.session,
                actor=self.principal,
                action=audit.UPDATE,
                entity_type="collateral",
                entity_id=str(collateral.id),
                changes=changes,
            )
        return collateral

    async def add_appraisal(self, collateral_id: str | uuid.UUID, data: Mapping[str, Any]) -> Appraisal:
        """Record a new appraisal; the latest by date becomes the collateral's value."""
        self.principal.require(LOANS_WRITE)
        collateral = await self.get(collateral_id, for_update=True)
        values = validate_appraisal(data)
        appraisal = Appraisal(
            collateral_id=collateral.id,
            value=values["appraised_value"],
            appraised_on=values["appraised_on"],
            appraiser=values["appraiser"],
            recorded_by=self.principal.user_id,
        )
        self.session.add(appraisal)
        before = {"appraised_value": collateral.appraised_value, "appraised_on": collateral.appraised_on}
        if values["appraised_on"] >= collateral.appraised_on:
            collateral.appraised_value = values["appraised_value"]
            collateral.appraised_on = values["appraised_on"]
            collateral.updated_at = datetime.now(UTC)
        await audit.record(
            self.session,
            actor=self.principal,
            action=audit.CREATE,
            entity_type="appraisal",
            entity_id=str(collateral.id),
            changes=audit.diff(before, values),
        )
        await self.session.flush()
        return appraisal

    async def appraisals_for(self, collateral_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Appraisal]]:
        """Appraisal histories of many pieces of collateral in one query, newest first (scope
        checked on the customers)."""
        self.principal.require(CUSTOMERS_READ)
        rows = await self.session.scalars(
            in_customer_scope(
                select(Appraisal)
                .join(Collateral, Collateral.id == Appraisal.collateral_id)
                .join(Customer, Customer.id == Collateral.customer_id)
                .where(Appraisal.collateral_id.in_(collateral_ids))
                .order_by(Appraisal.collateral_id, Appraisal.appraised_on.desc(), Appraisal.id.desc()),
                self.principal,
            )
        )
        found: dict[uuid.UUID, list[Appraisal]] = {collateral_id: [] for collateral_id in collateral_ids}
        for row in rows:
            found[row.collateral_id].append(row)
        return found

    async def appraisals(self, collateral_id: str | uuid.UUID) -> list[Appraisal]:
        """Appraisal history, newest first."""
        collateral = await self.get(collateral_id)
        return (await self.appraisals_for([collateral.id]))[collateral.id]

    async def total_value(self, customer_id: uuid.UUID) -> Decimal:
        """Sum of the latest appraised values of a customer's collateral (scope checked by caller)."""
        value = await self.session.scalar(
            select(func.coalesce(func.sum(Collateral.appraised_value), 0)).where(
                Collateral.customer_id == customer_id
            )
        )
        return Decimal(value)
