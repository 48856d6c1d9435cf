"""Seeding a tenant with aged customers, their linked records and distinctive personal data."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from tenantcrm.auth.models import WebSession
from tenantcrm.complaints.service import ComplaintService
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.service import LoanService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.session import tenant_session

OLD = datetime.now(UTC) - timedelta(days=1000)
AS_OF = date.today()


def id_with_check(body17: str) -> str:
    weights, check = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), "10X98765432"
    return body17 + check[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


def fresh_id() -> str:
    return id_with_check(f"310101198{uuid.uuid4().int % 10}0101{uuid.uuid4().int % 900 + 100}")


@dataclass
class Seeded:
    id: uuid.UUID
    values: dict[str, str]
    """The distinctive texts typed for it: name, PII, interaction summary, complaint text."""


async def seed_customer(
    db,
    settings,
    tenant,
    admin,
    *,
    status: str = "prospect",
    loan: str | None = None,
    legal_hold: bool = False,
    aged: bool = True,
) -> Seeded:
    """A customer with PII, one interaction, one resolved complaint and one PII reveal; with
    `loan` ('active' or 'settled') a loan in that state; with `aged` everything dated 1000 days ago."""
    tag = uuid.uuid4().hex[:10]
    values = {
        "name": f"客户{tag}",
        "national_id": fresh_id(),
        "phone": f"139{uuid.uuid4().int % 10**8:08d}",
        "email": f"person.{tag}@mail.example",
        "address": f"上海市浦东新区{tag}路8号",
        "summary": f"电话沟通 {tag} 还款计划",
        "complaint": f"投诉内容 {tag} 收费",
        "resolution": f"处理结果 {tag} 退费",
        "occupation": f"职业{tag}",
    }
    cipher = cipher_source(db, master_key_ring(settings), tenant)
    async with tenant_session(db, tenant) as session:
        customers = CustomerService(session, admin, cipher)
        customer = await customers.create_customer(
            {k: values[k] for k in ("name", "national_id", "phone", "email", "address", "occupation")}
        )
        await ContactService(session, admin).log_interaction(
            customer.id, {"channel": "phone", "summary": values["summary"]}
        )
        complaints = ComplaintService(session, admin)
        complaint = await complaints.record(customer.id, {"category": "fees", "content": values["complaint"]})
        await complaints.update(complaint.id, {"status": "resolved", "resolution": values["resolution"]})
        await customers.reveal_pii(customer.id, ["phone"], purpose="核对还款账户", channel="web")
        if loan:
            created = await LoanService(session, admin).create_loan(
                customer.id,
                {
                    "product": "消费贷",
                    "amount": "50000",
                    "annual_rate": "6%",
                    "term_months": "12",
                    "method": "equal_installment",
                    "start_date": (date.today() - timedelta(days=1100)).isoformat(),
                },
            )
            if loan == "settled":
                await session.execute(
                    text(
                        "UPDATE loans SET status = 'settled', settled_on = :on, updated_at = :at"
                        " WHERE id = :id"
                    ),
                    {"on": OLD.date(), "at": OLD, "id": created.id},
                )
    async with tenant_session(db, tenant) as session:
        # As if an import had made it: the staged row keeps its values until retention clears them.
        job_id = uuid.uuid4()
        await session.execute(
            text("INSERT INTO import_jobs (id, file_name, status) VALUES (:id, 'book.xlsx', 'done')"),
            {"id": job_id},
        )
        await session.execute(
            text(
                "INSERT INTO import_rows (job_id, row_number, status, values, notes, national_id_bidx,"
                " customer_id) SELECT :job, 1, 'valid', jsonb_build_object('name', name), :notes,"
                " national_id_bidx, id FROM customers WHERE id = :id"
            ),
            {"job": job_id, "notes": values["address"], "id": customer.id},
        )
    at = OLD if aged else datetime.now(UTC)
    async with tenant_session(db, tenant) as session:
        params = {"id": customer.id, "at": at, "status": status, "hold": legal_hold}
        await session.execute(
            text(
                "UPDATE customers SET created_at = :at, updated_at = :at, last_contact_at = :at,"
                " status = :status, legal_hold = :hold WHERE id = :id"
            ),
            params,
        )
        for statement in (
            "UPDATE interactions SET at = :at WHERE customer_id = :id",
            "UPDATE complaints SET received_at = :at, respond_by = :at, resolved_at = :at"
            " WHERE customer_id = :id",
            "UPDATE pii_access_log SET at = :at WHERE customer_id = :id",
            "UPDATE loans SET updated_at = :at WHERE customer_id = :id",
        ):
            await session.execute(text(statement), {"id": customer.id, "at": at})
    return Seeded(customer.id, values)


async def add_expired_session(db, tenant, user_id, *, expired_days_ago: int) -> None:
    async with tenant_session(db, tenant) as session:
        expires = datetime.now(UTC) - timedelta(days=expired_days_ago)
        session.add(
            WebSession(
                token_hash=hashlib.sha256(uuid.uuid4().bytes).digest(),
                user_id=user_id,
                created_at=expires - timedelta(hours=8),
                last_seen_at=expires - timedelta(hours=1),
                expires_at=expires,
            )
        )


async def enable_all(
    db,
    tenant,
    admin,
    *,
    period: int = 365,
    action: str = "anonymise",
    disabled: tuple[str, ...] = (),
    **actions: str,
) -> None:
    from tenantcrm.retention.service import CATEGORIES, DELETE_ONLY, RetentionService

    rows = [
        {
            "category": c,
            "period_days": str(period),
            "action": "delete" if c in DELETE_ONLY else actions.get(c, action),
            "enabled": "" if c in disabled else "on",
        }
        for c in CATEGORIES
    ]
    async with tenant_session(db, tenant) as session:
        await RetentionService(session, admin).update_policies(rows)


async def fingerprint(db, tenant) -> dict[str, str]:
    """md5 of every table's rows in a stable order: equal fingerprints, unchanged data."""
    async with tenant_session(db, tenant) as session:
        tables = (
            await session.execute(
                text(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                )
            )
        ).scalars()
        found = {}
        for table in tables:
            found[table] = await session.scalar(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t"
                )
            )
    return found
