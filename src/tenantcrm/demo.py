"""The demo tenant for `make run`: created or refreshed with realistic sample customers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from faker import Faker
from sqlalchemy import func, select

from tenantcrm.auth.service import (
    create_api_token,
    principal_for_user,
    revoke_api_tokens_named,
    upsert_user,
)
from tenantcrm.collateral.service import CollateralService
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.models import FollowUp, Interaction
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.models import Customer
from tenantcrm.customers.regions import REGIONS
from tenantcrm.customers.service import CustomerService
from tenantcrm.database import Database
from tenantcrm.loans.models import Loan
from tenantcrm.loans.schedule import add_months
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.risk.case_service import RiskCaseService
from tenantcrm.risk.warning_service import WarningService
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
GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC")
TAGS = ["VIP", "房贷", "老客户", "重点客户", "代发工资", "小微企业主"]
INDUSTRIES = ["制造业", "批发和零售业", "建筑业", "交通运输业", "住宿和餐饮业", "信息技术服务业"]
# (product, method, months, annual rate range, amount range in yuan, collateral kind or None)
PRODUCTS = {
    "individual": [
        (
            "个人住房抵押贷款",
            "equal_installment",
            (120, 240, 360),
            ("0.035", "0.049"),
            (500_000, 5_000_000),
            "residence",
        ),
        ("个人消费贷款", "equal_principal", (12, 24, 36), ("0.06", "0.12"), (50_000, 300_000), None),
        (
            "个人经营贷款",
            "interest_only",
            (12, 24, 36),
            ("0.045", "0.08"),
            (500_000, 3_000_000),
            "commercial",
        ),
        ("汽车贷款", "equal_installment", (24, 36, 60), ("0.05", "0.09"), (100_000, 400_000), "vehicle"),
    ],
    "enterprise": [
        ("流动资金贷款", "bullet", (6, 12), ("0.04", "0.07"), (1_000_000, 20_000_000), "equipment"),
        ("固定资产贷款", "equal_principal", (36, 60), ("0.04", "0.065"), (2_000_000, 30_000_000), "land"),
    ],
}


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
        if not await session.scalar(select(func.count()).select_from(Loan)):
            await _seed_loan_book(session, owners[0])
        if not await session.scalar(select(func.count()).select_from(Interaction)):
            await _seed_relationship_work(session, owners[0], owners[1])
        for owner in owners:
            await _plan_my_day(session, owner, date.today())
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
            "assets": str(income * rng.randint(20, 400)),
            # Months of income: about one customer in eight owes more than half a year's income.
            "liabilities": str(income * rng.randint(0, 7)),
            "credit_score": str(score := rng.randint(420, 900)),
            "credit_grade": GRADES[min((900 - score) // 60, len(GRADES) - 1)],
            "tags": rng.sample(TAGS, rng.randint(0, 2)),
            "source": rng.choice(["walk_in", "referral", "online", "partner", "marketing"]),
        }
        if enterprise:
            values["industry"] = rng.choice(INDUSTRIES)
        else:
            values["national_id"] = fake.ssn()
            values["occupation"] = fake.job()[:100]
            values["marital_status"] = rng.choices(
                ["single", "married", "divorced", "widowed"], [30, 60, 8, 2]
            )[0]
        created_at = now - timedelta(days=rng.randint(0, 720), minutes=rng.randint(0, 1440))
        samples.append((rng.choice(owners), created_at, values))
    return samples


async def _seed_loan_book(session, admin) -> None:
    """Collateral, loans and their repayment histories for the demo's active and settled
    customers, through the services: most pay on time, some fell behind months ago."""
    rng = random.Random(4_9)
    customers = list(
        await session.scalars(
            select(Customer).where(Customer.status.in_(("active", "settled"))).order_by(Customer.created_at)
        )
    )
    loans, collateral = LoanService(session, admin), CollateralService(session, admin)
    today = date.today()
    for customer in customers:
        for _ in range(rng.choices([1, 2], [80, 20])[0]):
            product, method, terms, rates, amounts, kind = rng.choice(PRODUCTS[customer.kind])
            amount = Decimal(rng.randrange(amounts[0], amounts[1], 10_000))
            low, high = (int(Decimal(r) * 10000) for r in rates)
            months = rng.choice(terms)
            start = add_months(today, -rng.randint(1, min(months, 30))) - timedelta(days=rng.randint(0, 27))
            secured = []
            if kind is not None:
                pledged = await collateral.create(
                    customer.id,
                    {
                        "kind": kind,
                        "location": REGIONS[customer.region_code][0] if customer.region_code else "",
                        "region_code": customer.region_code,
                        "area_m2": str(rng.randint(60, 240)) if kind in ("residence", "commercial") else None,
                        "appraised_value": str(
                            (amount * Decimal(rng.uniform(1.3, 2.5))).quantize(Decimal(1))
                        ),
                        "appraised_on": (start - timedelta(days=20)).isoformat(),
                        "appraiser": "示例资产评估有限公司",
                        "title_status": "mortgaged",
                    },
                )
                secured = [str(pledged.id)]
            loan = await loans.create_loan(
                customer.id,
                {
                    "product": product,
                    "amount": str(amount),
                    "annual_rate": str(Decimal(rng.randint(low, high)) / 10000),
                    "term_months": str(months),
                    "method": method,
                    "start_date": start.isoformat(),
                    "collateral_ids": secured,
                },
            )
            await _repay(loans, loan, rng, today)


async def _repay(loans: LoanService, loan: Loan, rng: random.Random, today: date) -> None:
    """Pay each instalment due so far on time, except for a borrower who stopped months ago."""
    behaviour = rng.choices(["on_time", "stopped", "partial"], [84, 12, 4])[0]
    stop = add_months(today, -rng.randint(1, 14)) if behaviour == "stopped" else today
    rows = []
    for line in await loans.schedule(loan.id):
        if line.due_date > stop or line.due_date > today:
            break
        amount = line.payment
        if behaviour == "partial" and add_months(line.due_date, 2) > today:
            amount = (amount / 2).quantize(Decimal("0.01"))
        paid_on = min(line.due_date + timedelta(days=rng.choice([0, 0, 0, 1, 3])), today)
        rows.append({"amount": str(amount), "paid_on": paid_on.isoformat(), "channel": "auto_debit"})
    if rows:
        await loans.record_repayments(loan.id, rows)
    suggestion = await loans.suggestion(loan)
    if suggestion.classification != "normal":
        await loans.classify(
            loan.id, suggestion.classification, "月度五级分类复核 Monthly classification review"
        )


# Follow-ups of "my day" by a customer's place among its owner's first live customers (the fourth
# is left uncontacted): (channel, note, first and last day from today).
MY_DAY_PLAN = (
    ("phone", "还款提醒", 0, 0),
    ("visit", "贷后走访", 1, 6),
    ("phone", "催收补充流水材料", -9, -1),
)


async def _live_customers(session, principal) -> list[Customer]:
    """The owner's first 40 prospects and active customers, the same ones on every run."""
    return list(
        await session.scalars(
            select(Customer)
            .where(Customer.owner_id == principal.user_id, Customer.status.in_(("active", "prospect")))
            .order_by(Customer.created_at, Customer.id)
            .limit(40)
        )
    )


async def _plan_my_day(session, principal, today: date) -> None:
    """Open follow-ups overdue, due today and visits this week for the owner, dated from `today` on
    every run, so "my day" shows each whenever the demo is started. The plans of an earlier run
    (same customer, note and assignee, still open) are moved rather than planned again; one that was
    ticked off is planned afresh."""
    rng = random.Random(2027)
    contacts = ContactService(session, principal)
    for index, customer in enumerate(await _live_customers(session, principal)):
        if index % 4 == 3:
            continue
        channel, note, first, last = MY_DAY_PLAN[index % 4]
        due_on = today + timedelta(days=rng.randint(first, last))
        planned = await session.scalar(
            select(FollowUp)
            .where(
                FollowUp.customer_id == customer.id,
                FollowUp.assignee_id == principal.user_id,
                FollowUp.note == note,
                FollowUp.done_at.is_(None),
            )
            .order_by(FollowUp.created_at, FollowUp.id)
            .limit(1)
        )
        if planned is None:
            planned = await contacts.plan_follow_up(
                customer.id, {"due_on": today.isoformat(), "channel": channel, "note": note}
            )
        # Set directly: users may not plan a date in the past, but the demo's "overdue" needs one.
        planned.due_on = due_on
    await session.flush()


CONTACT_NOTES = [
    ("phone", "电话回访，客户确认本月按时还款", "下月初再次提醒"),
    ("visit", "上门走访经营场所，经营正常，存货充足", "复核抵押物状态"),
    ("wechat", "微信沟通续贷意向，客户有兴趣", "准备续贷方案"),
    ("meeting", "与客户及担保人面谈，了解资金周转情况", "补充流水材料"),
    ("email", "发送利率调整通知", ""),
]


async def _seed_relationship_work(session, admin, officer) -> None:
    """Contacts, complaints, flags and a risk case, so that "my day", the timeline, the risk board
    and the dashboard have something to show (the follow-ups come from _plan_my_day, every run)."""
    rng = random.Random(2026)
    now = datetime.now(UTC)
    today = date.today()
    for principal in (officer, admin):
        own = await _live_customers(session, principal)
        contacts = ContactService(session, principal)
        for index, customer in enumerate(own):
            if index % 4 == 3:
                continue  # some customers were never contacted: "my day" lists them
            for back in sorted(rng.sample(range(3, 120), rng.randint(1, 3)), reverse=True):
                channel, summary, next_step = rng.choice(CONTACT_NOTES)
                await contacts.log_interaction(
                    customer.id,
                    {
                        "at": (now - timedelta(days=back, hours=rng.randint(0, 8))).isoformat(),
                        "channel": channel,
                        "summary": summary,
                        "next_step": next_step,
                    },
                )
        complaints = ComplaintService(session, principal)
        for customer, category, text in zip(
            own[:3],
            ("fees", "collection", "service"),
            ("对提前还款手续费有异议", "催收电话过于频繁", "柜台办理等待时间过长"),
            strict=False,
        ):
            await complaints.record(customer.id, {"category": category, "content": text})
    warnings = WarningService(session, admin)
    await warnings.evaluate(today)
    flagged = await warnings.flagged(kind="days_past_due", limit=3)
    cases = RiskCaseService(session, admin)
    for row in flagged[:2]:
        case = await cases.open_case(
            row.warning.customer_id,
            {"warning_id": str(row.warning.id), "description": "连续逾期，需核实还款能力并制定催收方案"},
        )
        await cases.add_measure(
            case.id,
            {
                "description": "电话催收并了解逾期原因",
                "owner_id": str(officer.user_id),
                "due_on": (today - timedelta(days=2)).isoformat(),
            },
        )
        await cases.add_measure(
            case.id, {"description": "复核抵押物价值", "due_on": (today + timedelta(days=10)).isoformat()}
        )
