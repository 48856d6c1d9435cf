"""Complaints with response targets, risk cases with measures and the board, early warning."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.complaints.models import Complaint
from tenantcrm.complaints.service import ComplaintNotFound, ComplaintService
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService
from tenantcrm.risk.case_service import RiskCaseNotFound, RiskCaseService
from tenantcrm.risk.models import EarlyWarning, RiskCase
from tenantcrm.risk.warning_service import WarningService
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, make_tenant, principal_of


@pytest.fixture(scope="module")
async def desk(lifecycle, db):
    fixture = await make_tenant(lifecycle, "risk")
    tenant = fixture.tenant
    officer = await principal_of(db, tenant, await add_user(db, tenant, "loan_officer"))
    other = await principal_of(db, tenant, await add_user(db, tenant, "loan_officer"))
    risk = await principal_of(db, tenant, await add_user(db, tenant, "risk_officer"))
    return tenant, officer, other, risk


async def customer_of(db, tenant, principal, **extra):
    async with tenant_session(db, tenant) as session:
        return (await CustomerService(session, principal).create_customer({"name": "刘洋", **extra})).id


async def test_a_complaint_gets_a_response_target_and_is_highlighted_when_late(desk, db):
    tenant, officer, other, _ = desk
    customer_id = await customer_of(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        complaint = await ComplaintService(session, officer).record(
            customer_id, {"category": "fees", "content": "Charged twice for the appraisal"}
        )
        assert complaint.respond_by - complaint.received_at == timedelta(hours=48)
        complaint_id = complaint.id
    async with tenant_session(db, tenant) as session:
        await session.execute(
            update(Complaint)
            .where(Complaint.id == complaint_id)
            .values(respond_by=datetime.now(UTC) - timedelta(hours=1))
        )
    async with tenant_session(db, tenant) as session:
        service = ComplaintService(session, officer)
        late = await service.list_complaints(overdue_only=True)
        assert [(r.complaint.id, r.overdue) for r in late] == [(complaint_id, True)]
        with pytest.raises(InvalidInput) as refused:
            await service.update(complaint_id, {"status": "resolved"})
        assert refused.value.errors[0].field == "resolution"
    async with tenant_session(db, tenant) as session:
        service = ComplaintService(session, officer)
        resolved = await service.update(complaint_id, {"status": "resolved", "resolution": "Refunded"})
        assert resolved.resolved_at is not None
        assert await service.list_complaints(overdue_only=True) == []
    async with tenant_session(db, tenant) as session:
        with pytest.raises(ComplaintNotFound):
            await ComplaintService(session, other).get(complaint_id)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"category": "weather", "content": "x"}, ["category"]),
        ({"category": "fees", "content": " "}, ["content"]),
        ({"category": "fees", "content": "x", "loan_id": "nope"}, ["loan_id"]),
        ({"category": "fees", "content": "x", "kind": "praise"}, ["kind"]),
    ],
)
async def test_bad_complaints_are_refused_writing_nothing(desk, db, data, fields):
    tenant, officer, *_ = desk
    customer_id = await customer_of(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await ComplaintService(session, officer).record(customer_id, data)
    assert [e.field for e in refused.value.errors] == fields
    async with tenant_session(db, tenant) as session:
        assert not await session.scalar(
            select(func.count()).select_from(Complaint).where(Complaint.customer_id == customer_id)
        )


async def test_a_risk_case_with_measures_moves_across_the_board(desk, db):
    tenant, officer, other, risk = desk
    customer_id = await customer_of(db, tenant, officer)
    async with tenant_session(db, tenant) as session:
        with pytest.raises(PermissionDenied):
            await RiskCaseService(session, officer).open_case(customer_id, {"description": "x"})
        cases = RiskCaseService(session, risk)
        case = await cases.open_case(customer_id, {"trigger": "external", "description": "Court summons"})
        overdue = await cases.add_measure(
            case.id,
            {"description": "Call the borrower", "due_on": (date.today() - timedelta(days=2)).isoformat()},
        )
        await cases.add_measure(case.id, {"description": "Re-appraise", "due_on": date.today().isoformat()})
        board = await cases.board()
        card = board.columns["in_progress"][0]
        assert (card.case.id, card.open_measures, card.overdue_measures) == (case.id, 2, 1)
        assert (await cases.measures([case.id]))[case.id][0].overdue(date.today())
        await cases.update_measure(overdue.id, "done")
        with pytest.raises(InvalidInput) as refused:
            await cases.update_case(case.id, {"status": "closed"})
        assert refused.value.errors[0].field == "outcome"
        await cases.update_case(
            case.id, {"status": "closed", "outcome": "Settled", "lessons": "Check court records"}
        )
        with pytest.raises(InvalidInput):
            await cases.add_measure(case.id, {"description": "late", "due_on": date.today().isoformat()})
        board = await cases.board()
    assert [c.case.id for c in board.columns["closed"]] == [case.id]
    async with tenant_session(db, tenant) as session:
        with pytest.raises(RiskCaseNotFound):
            await RiskCaseService(session, other).get_case(case.id)


async def test_early_warning_flags_and_clears_and_a_case_opens_from_a_flag(desk, db):
    tenant, officer, _, risk = desk
    late_id = await customer_of(db, tenant, officer, monthly_income="10000", liabilities="90000")
    fine_id = await customer_of(db, tenant, officer, monthly_income="10000", liabilities="1000")
    async with tenant_session(db, tenant) as session:
        loans = LoanService(session, officer)
        loan = await loans.create_loan(
            late_id,
            {
                "product": "经营贷",
                "amount": "100000",
                "annual_rate": "6%",
                "term_months": "24",
                "method": "equal_installment",
                "start_date": add_months(date.today(), -4).isoformat(),
            },
        )
        await session.execute(
            update(Customer)
            .where(Customer.id == late_id)
            .values(created_at=datetime.now(UTC) - timedelta(days=200))
        )
    async with tenant_session(db, tenant) as session:
        loans = LoanService(session, risk)
        await loans.classify(loan.id, "substandard", "Three instalments missed")
        result = await WarningService(session, risk).evaluate()
        flagged = await WarningService(session, risk).flagged()
    kinds = {(row.warning.customer_id, row.warning.kind) for row in flagged}
    assert {
        (late_id, "days_past_due"),
        (late_id, "classification_worsened"),
        (late_id, "debt_to_income"),
        (late_id, "no_contact_with_overdue"),
    } <= kinds
    assert not any(customer == fine_id for customer, _ in kinds)
    assert result.raised >= 4
    dpd_flag = next(r.warning for r in flagged if r.warning.kind == "days_past_due")
    assert dpd_flag.details["days_past_due"] > 30
    async with tenant_session(db, tenant) as session:
        case = await RiskCaseService(session, risk).open_case(
            late_id, {"warning_id": str(dpd_flag.id), "description": "Overdue beyond 30 days"}
        )
        assert case.trigger == "early_warning"
        with pytest.raises(InvalidInput):
            await RiskCaseService(session, risk).open_case(
                late_id, {"warning_id": str(dpd_flag.id), "description": "again"}
            )
    # Contact clears the no-contact flag; switching a rule off clears its flags; rerunning is stable.
    async with tenant_session(db, tenant) as session:
        await ContactService(session, officer).log_interaction(
            late_id, {"channel": "phone", "summary": "Promised"}
        )
        service = WarningService(session, risk)
        await service.update_rules([{"kind": "debt_to_income", "threshold": "0.5", "enabled": ""}])
        second = await service.evaluate()
        again = await service.evaluate()
        live = {w.kind for w in (await service.for_customers([late_id]))[late_id]}
        with pytest.raises(InvalidInput):
            await service.update_rules([{"kind": "days_past_due", "threshold": "-3", "enabled": "on"}])
        with pytest.raises(PermissionDenied):
            await WarningService(session, officer).evaluate()
        linked = await session.scalar(select(EarlyWarning.case_id).where(EarlyWarning.id == dpd_flag.id))
        assert await session.scalar(select(func.count()).select_from(RiskCase)) >= 1
    assert live == {"days_past_due", "classification_worsened"}
    assert second.cleared == 2 and again.raised == again.cleared == 0
    assert linked == case.id
