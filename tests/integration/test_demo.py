"""The demo tenant `make run` serves: customers with profiles, a loan book with arrears, rerunnable."""

from __future__ import annotations

from sqlalchemy import func, select

from tenantcrm.customers.models import Customer
from tenantcrm.demo import DEMO_CUSTOMERS, ensure_demo_tenant
from tenantcrm.loans.models import Loan, Repayment
from tenantcrm.loans.service import LoanFilter, LoanService
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import principal_of


async def test_the_demo_tenant_has_a_book_with_arrears_and_reruns_without_duplicates(db, settings):
    demo = await ensure_demo_tenant(db, settings)
    await ensure_demo_tenant(db, settings)
    tenant = await find_tenant_by_slug(db, demo.slug)
    admin = await principal_of(db, tenant, demo.admin_email)
    async with tenant_session(db, tenant) as session:
        customers = await session.scalar(select(func.count()).select_from(Customer))
        graded = await session.scalar(select(func.count()).where(Customer.credit_grade.is_not(None)))
        loans = await session.scalar(select(func.count()).select_from(Loan))
        repayments = await session.scalar(select(func.count()).select_from(Repayment))
        service = LoanService(session, admin)
        overdue = 0
        for bucket in ("1-30", "31-60", "61-90", "91-180", "181-360", "360+"):
            overdue += (await service.list_loans(LoanFilter(bucket=bucket))).total_count
        classified = await session.scalar(select(func.count()).where(Loan.classification != "normal"))
    assert DEMO_CUSTOMERS - 5 <= customers <= DEMO_CUSTOMERS
    assert graded == customers
    assert loans > 100 and repayments > loans
    assert overdue > 0 and classified > 0


async def test_the_demo_tenant_has_relationship_work_to_show(db, settings):
    from tenantcrm.complaints.models import Complaint
    from tenantcrm.contacts.models import FollowUp, Interaction
    from tenantcrm.contacts.service import ContactService
    from tenantcrm.risk.models import EarlyWarning, RiskCase, RiskMeasure

    demo = await ensure_demo_tenant(db, settings)
    await ensure_demo_tenant(db, settings)  # a rerun adds nothing twice
    tenant = await find_tenant_by_slug(db, demo.slug)
    officer = await principal_of(db, tenant, demo.officer_email)
    async with tenant_session(db, tenant) as session:
        counts = {
            model.__name__: await session.scalar(select(func.count()).select_from(model))
            for model in (Interaction, FollowUp, Complaint, EarlyWarning, RiskCase, RiskMeasure)
        }
        day = await ContactService(session, officer).my_day()
    assert counts["Interaction"] > 20 and counts["FollowUp"] > 5 and counts["Complaint"] == 6
    assert counts["EarlyWarning"] > 0 and counts["RiskCase"] == 2 and counts["RiskMeasure"] == 4
    assert day.due_today and day.visits and day.uncontacted


async def test_my_day_of_the_demo_is_dated_from_the_day_it_runs(db, settings):
    """Whenever the demo is started, the officer and the admin each have follow-ups overdue, due today
    and visits this week: a rerun days later moves the open plans instead of adding more, and plans
    afresh only what was ticked off."""
    from datetime import timedelta

    from sqlalchemy import update

    from tenantcrm.contacts.models import FollowUp
    from tenantcrm.contacts.service import ContactService

    demo = await ensure_demo_tenant(db, settings)
    tenant = await find_tenant_by_slug(db, demo.slug)
    people = [await principal_of(db, tenant, email) for email in (demo.officer_email, demo.admin_email)]

    async def open_plans() -> int:
        async with tenant_session(db, tenant) as session:
            return await session.scalar(select(func.count()).where(FollowUp.done_at.is_(None)))

    async def days() -> list:
        async with tenant_session(db, tenant) as session:
            return [await ContactService(session, person).my_day() for person in people]

    before = await open_plans()
    # As if the last run was twelve days ago: every plan it made has slipped into the past.
    async with tenant_session(db, tenant) as session:
        await session.execute(update(FollowUp).values(due_on=FollowUp.due_on - timedelta(days=12)))
    async with tenant_session(db, tenant) as session:
        ticked = (await ContactService(session, people[0]).my_day()).overdue[0].follow_up.id
        await ContactService(session, people[0]).complete_follow_up(ticked)
    await ensure_demo_tenant(db, settings)

    for day in await days():
        assert day.overdue and day.due_today and day.visits
        assert all(row.follow_up.channel == "visit" for row in day.visits)
        assert max(row.overdue_days for row in day.overdue) <= 9  # moved, not left twelve days behind
    assert await open_plans() == before  # the ticked-off one planned afresh, nothing else added
