"""What the risk pages read through RiskCaseService: the form to open a case, a case's file, people."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.auth.service import find_user_by_email
from tenantcrm.customers.service import CustomerNotFound, CustomerService
from tenantcrm.loans.service import LoanService
from tenantcrm.risk.case_service import MeasureNotFound, RiskCaseService
from tenantcrm.risk.models import EarlyWarning
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of


@pytest.fixture(scope="module")
async def desk(lifecycle, db):
    fixture = await make_tenant(lifecycle, "riskview")
    tenant = fixture.tenant
    admin = await principal_of(db, tenant, fixture.admin_email)
    officer = await principal_of(db, tenant, await add_user(db, tenant, "loan_officer"))
    other = await principal_of(db, tenant, await add_user(db, tenant, "loan_officer"))
    risk = await principal_of(db, tenant, await add_user(db, tenant, "risk_officer"))
    return tenant, admin, officer, other, risk


async def customer_with_loan(db, tenant, officer) -> tuple[uuid.UUID, uuid.UUID]:
    async with tenant_session(db, tenant) as session:
        customer = await CustomerService(session, officer).create_customer(
            {"name": f"王芳 {uuid.uuid4().hex[:4]}"}
        )
        loan = await LoanService(session, officer).create_loan(
            customer.id,
            {
                "product": "经营贷",
                "amount": "80000",
                "annual_rate": "6%",
                "term_months": "12",
                "method": "equal_installment",
                "start_date": date.today().isoformat(),
            },
        )
        return customer.id, loan.id


async def flag(db, tenant, customer_id, kind="days_past_due", **values) -> uuid.UUID:
    async with tenant_session(db, tenant) as session:
        warning = EarlyWarning(
            id=uuid.uuid4(), customer_id=customer_id, kind=kind, details={"days_past_due": 45}
        )
        session.add(warning)
        await session.flush()
        if values:
            await session.execute(update(EarlyWarning).where(EarlyWarning.id == warning.id).values(**values))
        return warning.id


async def test_the_draft_offers_the_customers_loans_its_live_flag_and_active_people(desk, db):
    tenant, admin, officer, _, risk = desk
    customer_id, loan_id = await customer_with_loan(db, tenant, officer)
    other_customer, _ = await customer_with_loan(db, tenant, officer)
    live = await flag(db, tenant, customer_id)
    cleared = await flag(db, tenant, customer_id, kind="debt_to_income", cleared_at=datetime.now(UTC))
    elsewhere = await flag(db, tenant, other_customer)
    async with tenant_session(db, tenant) as session:
        service = AccessAdminService(session, admin)
        gone = await service.invite_user(email=f"gone-{uuid.uuid4().hex[:6]}@example.com", role="viewer")
        gone_id = (await find_user_by_email(session, gone.email)).id
        await service.set_status(gone_id, "disabled")

    async with tenant_session(db, tenant) as session:
        cases = RiskCaseService(session, risk)
        draft = await cases.draft(customer_id, live)
        assert (draft.customer.id, [loan.id for loan in draft.loans], draft.warning.id) == (
            customer_id,
            [loan_id],
            live,
        )
        assert risk.user_id in {person.id for person in draft.owners}
        assert gone_id not in {person.id for person in draft.owners}
        assert (await cases.names([gone_id, None]))[gone_id]  # old owners keep their name
        for not_offered in (cleared, elsewhere, uuid.uuid4(), "nonsense"):
            assert (await cases.draft(customer_id, not_offered)).warning is None
        case = await cases.open_case(customer_id, {"warning_id": str(live), "description": "逾期"})
        assert (await cases.draft(customer_id, live)).warning is None  # already in a case
        assert case.trigger == "early_warning"


async def test_the_draft_needs_risk_manage_and_a_customer_in_scope(desk, db):
    tenant, _, officer, _, risk = desk
    customer_id, _ = await customer_with_loan(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        with pytest.raises(PermissionDenied):
            await RiskCaseService(session, officer).draft(customer_id)
        with pytest.raises(CustomerNotFound):
            await RiskCaseService(session, risk).draft(uuid.uuid4())
        with pytest.raises(CustomerNotFound):
            await RiskCaseService(session, risk).draft("")


async def test_a_case_file_names_its_people_and_measures_stay_in_scope(desk, db):
    tenant, _, officer, other, risk = desk
    customer_id, loan_id = await customer_with_loan(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        cases = RiskCaseService(session, risk)
        case = await cases.open_case(
            customer_id,
            {"description": "担保人失联", "loan_id": str(loan_id), "owner_id": str(officer.user_id)},
        )
        late = await cases.add_measure(
            case.id, {"description": "联系担保人", "due_on": (date.today() - timedelta(days=1)).isoformat()}
        )
        soon = await cases.add_measure(
            case.id, {"description": "复评抵押物", "due_on": date.today().isoformat()}
        )
    async with tenant_session(db, tenant) as session:
        file = await RiskCaseService(session, officer).case_file(case.id)  # reading needs customers.read only
        assert (file.customer.id, file.loan.id, file.warning) == (customer_id, loan_id, None)
        assert [m.id for m in file.measures] == [late.id, soon.id]
        assert file.names[officer.user_id] == officer.display_name
        assert file.names[risk.user_id] == risk.display_name  # who opened it and owns the measures
        assert (await RiskCaseService(session, officer).get_measure(soon.id)).case_id == case.id
        with pytest.raises(MeasureNotFound):
            await RiskCaseService(session, other).get_measure(soon.id)
        with pytest.raises(MeasureNotFound):
            await RiskCaseService(session, risk).get_measure("nonsense")
