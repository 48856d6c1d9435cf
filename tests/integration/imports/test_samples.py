"""The three sample sheets import as they are: counts, parsed collateral and loan terms, notes kept,
personal data stored encrypted and masked, one audited import event."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from tenantcrm.audit.models import AuditEvent
from tenantcrm.collateral.models import Appraisal, Collateral
from tenantcrm.customers.models import Customer
from tenantcrm.customers.service import CustomerService
from tenantcrm.imports.models import ImportRow
from tenantcrm.imports.service import ImportService
from tenantcrm.imports.tasks import queue_commit, queue_staging
from tenantcrm.jobs.worker import run_pending
from tenantcrm.loans.models import CustomerLoanSummary, InstallmentRow, Loan, loan_collateral
from tenantcrm.loans.schedule import add_months
from tenantcrm.pii.cipher import decryption_count
from tenantcrm.tenancy.session import tenant_session
from tests.integration.imports.conftest import sample


async def test_mortgage_sheet_creates_customers_collateral_and_loans_with_notes(shop):
    job = await shop.run(sample("mortgage-customers.xlsx"), "mortgage-customers.xlsx")

    assert (job.status, job.valid_rows, job.invalid_rows, job.duplicate_rows, job.created_rows) == (
        "done",
        60,
        0,
        0,
        60,
    )
    assert job.file_enc is None, "the upload is dropped when the job ends"
    async with tenant_session(shop.db, shop.tenant) as session:
        customer = await session.scalar(select(Customer).where(Customer.name == "武丹丹"))
        assert customer is not None
        assert customer.monthly_income == Decimal("50000.00")  # 月收入5万元
        assert (customer.gender, customer.birth_date) == ("female", date(1971, 9, 16))  # from the ID
        assert customer.region_code == "420100"  # 武汉市, from the address
        assert (customer.status, customer.source, customer.owner_id) == (
            "active",
            "import",
            shop.admin.user_id,
        )
        assert customer.national_id_masked == "4201**********6447"
        assert customer.phone_masked == "187****8792"
        assert customer.national_id_enc is not None and b"420106" not in customer.national_id_enc
        assert customer.pii_key_version == 1

        collateral = await session.scalar(select(Collateral).where(Collateral.customer_id == customer.id))
        # 位于深圳市南山区的一套公寓,面积68平方米,市场价值约650万元
        assert (collateral.kind, collateral.location, collateral.region_code) == (
            "residence",
            "深圳市南山区",
            "440300",
        )
        assert (collateral.area_m2, collateral.appraised_value) == (Decimal("68.00"), Decimal("6500000.00"))
        assert "650万元" in collateral.description
        appraisal = await session.scalar(select(Appraisal).where(Appraisal.collateral_id == collateral.id))
        assert appraisal.value == Decimal("6500000.00")

        loan = await session.scalar(select(Loan).where(Loan.customer_id == customer.id))
        # 申请贷款金额455万元,贷款期限10年,年利率5.5%
        assert (loan.amount, loan.term_months, loan.annual_rate) == (
            Decimal("4550000.00"),
            120,
            Decimal("0.055"),
        )
        assert (loan.method, loan.start_date, loan.status) == ("equal_installment", date.today(), "active")
        assert loan.first_due_date == add_months(date.today(), 1)
        lines = list(await session.scalars(select(InstallmentRow).where(InstallmentRow.loan_id == loan.id)))
        assert len(lines) == 120 and sum(line.principal for line in lines) == loan.amount
        linked = await session.scalar(
            select(loan_collateral.c.collateral_id).where(loan_collateral.c.loan_id == loan.id)
        )
        assert linked == collateral.id
        # The commit refreshed the stored loan figures segments read (ADR 0010).
        summary = await session.get(CustomerLoanSummary, customer.id)
        assert (summary.live_loans, summary.outstanding, summary.oldest_unpaid_due, summary.classes) == (
            1,
            Decimal("4550000.00"),
            loan.first_due_date,
            ["normal"],
        )
        assert await session.scalar(select(func.count()).select_from(CustomerLoanSummary)) == 60

        # What could not be parsed is kept, not dropped: the rest of 财务状况 and 客户反馈.
        notes = await ImportService(session, shop.admin, shop.cipher).notes_for_customer(customer.id)
        assert notes == ["客户反馈: 要求提前还款无违约金; 财务状况: 已有1笔车贷"]

        event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "import"))
        assert event.entity_type == "import_job" and event.entity_id == str(job.id)
        assert event.changes["created_customers"] == 60 and event.changes["created_loans"] == 60
        assert "武丹丹" not in str(event.changes) and "4201" not in str(event.changes)
        assert (
            await session.scalar(select(ImportRow.pii_enc).where(ImportRow.pii_enc.is_not(None)).limit(1))
            is None
        )
    assert await shop.count(Collateral) == 60 and await shop.count(Loan) == 60


async def test_borrowers_sheet_reads_one_column_per_field(shop):
    job = await shop.run(sample("borrowers.xlsx"), "borrowers.xlsx")

    assert (job.status, job.valid_rows, job.problem_rows, job.created_rows) == ("done", 60, 0, 60)
    async with tenant_session(shop.db, shop.tenant) as session:
        customer = await session.scalar(select(Customer).where(Customer.name == "郭英"))
        assert (customer.gender, customer.birth_date, customer.marital_status) == (
            "male",
            date(1961, 2, 19),
            "married",
        )
        assert (customer.occupation, customer.credit_grade, customer.monthly_income) == (
            "产品专员",
            "B",
            Decimal("30000.00"),
        )
        assert customer.email_masked == "x*******@example.com"
        assert customer.status == "prospect", "the loan columns are empty: no loan, still a prospect"
        notes = await ImportService(session, shop.admin, shop.cipher).notes_for_customer(customer.id)
        # 还款方式 without a loan to apply it to is kept as a note, like 备注.
        assert notes == ["备注: 对贷款利率有异议,希望进一步协商; 还款方式: 等额本息"]
    assert await shop.count(Loan) == 0


async def test_risk_sheet_keeps_its_case_columns_as_notes(shop):
    job = await shop.run(sample("risk-customers.xlsx"), "risk-customers.xlsx")

    assert (job.status, job.valid_rows, job.problem_rows, job.created_rows) == ("done", 25, 0, 25)
    async with tenant_session(shop.db, shop.tenant) as session:
        person = await session.scalar(select(Customer).where(Customer.name == "武丹丹"))
        assert (person.kind, person.industry, person.credit_score, person.risk_level) == (
            "individual",
            "建筑",
            764,
            "high",
        )
        company = await session.scalar(select(Customer).where(Customer.name == "毛海燕"))
        assert (company.kind, company.risk_level, company.gender) == ("enterprise", "low", None)
        (notes,) = await ImportService(session, shop.admin, shop.cipher).notes_for_customer(person.id)
        for kept in (
            "编号: 001",
            "交易记录: 多次延期付款",
            "处理措施: 要求追加担保",
            "经验总结: 加强客户信用评估",
        ):
            assert kept in notes


async def test_the_same_people_in_a_second_sheet_are_duplicates_by_name_and_phone(shop):
    await shop.run(sample("mortgage-customers.xlsx"), "mortgage-customers.xlsx")
    job = await shop.run(sample("borrowers.xlsx"), "borrowers.xlsx")  # no ID numbers, same phones

    assert (job.status, job.valid_rows, job.duplicate_rows, job.created_rows) == ("done", 0, 60, 0)
    assert await shop.count(Customer) == 60


async def test_an_import_runs_through_the_queue_and_never_decrypts_to_show_progress(shop):
    """The web's path: steps marked in request transactions, the work done by queued jobs."""
    async with tenant_session(shop.db, shop.tenant) as session:
        service = ImportService(session, shop.admin, shop.cipher)
        job = await service.upload("mortgage-customers.xlsx", sample("mortgage-customers.xlsx"))
        await service.save_mapping(job.id, {int(k): v for k, v in job.mapping["columns"].items()})
        job = await service.start_staging(job.id)
        await queue_staging(shop.db, shop.tenant, job)
    await run_pending(shop.db, shop.ring)
    before = decryption_count()
    async with tenant_session(shop.db, shop.tenant) as session:
        service = ImportService(session, shop.admin, shop.cipher)
        staged = await service.get_job(job.id)
        assert (staged.status, staged.staged_rows, staged.total_rows, staged.progress) == (
            "staged",
            60,
            60,
            100,
        )
        preview = await service.preview(job.id)
        assert [row.row_number for row in preview["rows"]][:3] == [2, 3, 4]
        assert preview["rows"][0].values["masked"]["national_id"] == "4201**********6447"
        assert preview["problems"] == []
        assert await shop.count(Customer) == 0, "nothing is created before the commit"
        job = await service.start_commit(job.id, "all_or_nothing")
        await queue_commit(shop.db, shop.tenant, job)
    assert decryption_count() == before, "showing the preview decrypts nothing"
    await run_pending(shop.db, shop.ring)

    done = await shop.job(job.id)
    assert (done.status, done.created_rows, done.mode) == ("done", 60, "all_or_nothing")
    async with tenant_session(shop.db, shop.tenant) as session:
        page = await CustomerService(session, shop.admin).list_customers(first=100)
        assert page.total_count == 60
