"""Bench data: N tenants with M customers each, their lending book, PII and contacts, set-based.

    .venv/bin/python bench/seed.py --tenants 2 --customers 100000 [--seed 8]

The book is bench/segments.py's seed (SEED_STATEMENTS: customers with regions, incomes, risk,
scores, owners and tags; loans with products, classes and a short ledger of instalments,
repayments and allocations; early-warning flags and risk cases), run as the tenant role inside
tenant_session, with two additions for the GraphQL and page benches:

- more loans: 1 to 3 per active customer (2.2 on average), one per settled customer, none for
  prospects and closed ones: about 1.4 loans per customer (140,000 at 100,000 customers);
- a settled loan's ledger: one instalment repaid in full when it was settled (segments.py leaves
  settled loans without one, which LoanService never does and the app's arrears would refuse);
- real PII: every customer gets a valid resident ID, a mobile, an address (and 40 % an e-mail),
  encrypted with the tenant's key, masked and blind-indexed as CustomerService stores them,
  written by id in chunks (UPDATE ... FROM unnest);
- interactions: 1 to 4 logged contacts per customer ever contacted, the last at last_contact_at.

`SELECT setseed(--seed)` first makes every random() draw the same from run to run (ids and the
PII nonces differ). The command seeds a scratch database, prints the time per step as JSON and
merges `seed.tenant@M` into bench/results.json (throughput in customers/s); the benches call
seed_tenant directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from time import perf_counter

from common import RESULTS_PATH, Result, latency_result, scratch_database, write_results
from import_rows import person
from segments import REGION_CODES, SEED_STATEMENTS, table_sizes, vacuum_analyze
from sqlalchemy import text

from tenantcrm.customers.service import MASKS
from tenantcrm.database import Database
from tenantcrm.pii.cipher import TenantCipher
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.masking import normalize_phone
from tenantcrm.pii.store import cipher_for
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

PII_CHUNK = 5_000
# segments.py draws one or two loans per active customer; here one to three.
TWO_LOANS = "CROSS JOIN generate_series(1, 2) k\n            WHERE k = 1 OR c.r_second < 0.5"
THREE_LOANS = (
    "CROSS JOIN generate_series(1, 3) k\n"
    "            WHERE k = 1 OR (k = 2 AND c.r_second < 0.75) OR (k = 3 AND c.r_second < 0.42)"
)
INTERACTIONS = """
    INSERT INTO interactions (id, customer_id, at, channel, summary, next_step, author_id)
    SELECT gen_random_uuid(), c.id, c.last_contact_at - (k - 1) * interval '23 days',
           (ARRAY['phone', 'visit', 'wechat', 'email', 'meeting'])[1 + floor(random() * 5)::int],
           (ARRAY['电话回访，客户确认还款计划', '上门拜访，核实经营情况', '微信沟通续贷需求',
                  '邮件发送对账单', '面谈授信方案'])[1 + floor(random() * 5)::int],
           CASE WHEN random() < 0.3 THEN '下周再次联系' ELSE '' END,
           c.owner_id
    -- r_contacts is drawn per customer in a subquery: in the join's filter it would be per row.
    FROM (SELECT *, random() AS r_contacts FROM customers) c CROSS JOIN generate_series(1, 4) k
    WHERE c.last_contact_at IS NOT NULL AND k <= 1 + floor(c.r_contacts * 4)::int
"""
# segments.py's settled loans have no ledger; LoanService never makes such a loan, and the app's
# arrears read every loan's schedule. One instalment, repaid in full on the day it was settled.
SETTLED_LEDGERS = """
    WITH settled AS MATERIALIZED (
        SELECT l.id, l.amount, l.first_due_date, l.settled_on, round(l.amount * 0.08, 2) AS interest,
               gen_random_uuid() AS repayment_id
        FROM loans l WHERE l.status = 'settled'
          AND NOT EXISTS (SELECT 1 FROM installments i WHERE i.loan_id = l.id)
    ), new_installments AS (
        INSERT INTO installments (loan_id, number, due_date, principal, interest, principal_paid,
                                  interest_paid, paid_on)
        SELECT id, 1, first_due_date, amount, interest, amount, interest, settled_on FROM settled
    ), new_repayments AS (
        INSERT INTO repayments (id, loan_id, amount, paid_on, channel)
        SELECT repayment_id, id, amount + interest, settled_on, 'bank_transfer' FROM settled
    )
    INSERT INTO repayment_allocations (repayment_id, number, loan_id, paid_on, interest, principal)
    SELECT repayment_id, 1, id, settled_on, interest, amount FROM settled
"""
PII_UPDATE = text(
    """
    UPDATE customers c SET national_id_enc = v.nid_enc, national_id_masked = v.nid_masked,
           national_id_bidx = v.nid_bidx, phone_enc = v.phone_enc, phone_masked = v.phone_masked,
           phone_bidx = v.phone_bidx, address_enc = v.address_enc, address_masked = v.address_masked,
           email_enc = v.email_enc, email_masked = v.email_masked, pii_key_version = :version
    FROM unnest(CAST(:ids AS uuid[]), CAST(:nid_enc AS bytea[]), CAST(:nid_masked AS text[]),
                CAST(:nid_bidx AS bytea[]), CAST(:phone_enc AS bytea[]), CAST(:phone_masked AS text[]),
                CAST(:phone_bidx AS bytea[]), CAST(:address_enc AS bytea[]), CAST(:address_masked AS text[]),
                CAST(:email_enc AS bytea[]), CAST(:email_masked AS text[]))
         AS v(id, nid_enc, nid_masked, nid_bidx, phone_enc, phone_masked, phone_bidx, address_enc,
              address_masked, email_enc, email_masked)
    WHERE c.id = v.id
    """
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def book_statements() -> list[tuple[str, str]]:
    """segments.py's seed, with up to three loans per active customer."""
    statements = []
    for name, statement in SEED_STATEMENTS:
        if name.startswith("loans"):
            if TWO_LOANS not in statement:
                raise SystemExit("bench/segments.py's loan draw changed: update TWO_LOANS in bench/seed.py")
            statement = statement.replace(TWO_LOANS, THREE_LOANS)
        statements.append((name, statement))
    return statements


def _pii_values(cipher: TenantCipher, ids: list[uuid.UUID], first: int) -> dict[str, list]:
    """Encrypted, masked and indexed PII of the customers `ids`, numbered from `first`."""
    columns: dict[str, list] = {
        name: []
        for name in (
            "nid_enc nid_masked nid_bidx phone_enc phone_masked phone_bidx address_enc address_masked "
            "email_enc email_masked"
        ).split()
    }
    for offset, customer_id in enumerate(ids):
        n = first + offset
        _, _, national_id, phone, address, _, _ = person(n)
        email = f"customer{n}@mail.example" if n % 5 < 2 else None
        fields = {
            "nid": ("national_id", national_id),
            "phone": ("phone", phone),
            "address": ("address", address),
        }
        for key, (name, value) in fields.items():
            columns[f"{key}_enc"].append(cipher.encrypt("customers", f"{name}_enc", customer_id, value))
            columns[f"{key}_masked"].append(MASKS[name](value))
        columns["nid_bidx"].append(cipher.blind_index("national_id", national_id))
        columns["phone_bidx"].append(cipher.blind_index("phone", normalize_phone(phone)))
        columns["email_enc"].append(
            None if email is None else cipher.encrypt("customers", "email_enc", customer_id, email)
        )
        columns["email_masked"].append(None if email is None else MASKS["email"](email))
    return columns


async def seed_tenant(
    db: Database,
    settings: Settings,
    tenant: Tenant,
    customers: int,
    *,
    seed: float = 0.8,
    pii_offset: int = 0,
) -> dict[str, float]:
    """Fill one tenant (one transaction); seconds per step. `pii_offset` numbers this tenant's
    people apart from other tenants' (their identity numbers are unique per tenant anyway)."""
    seconds: dict[str, float] = {}
    cipher = await cipher_for(db, master_key_ring(settings), tenant)
    async with tenant_session(db, tenant) as session:
        await session.execute(text("SELECT setseed(:seed)"), {"seed": seed})
        for name, statement in book_statements():
            start = perf_counter()
            await session.execute(text(statement), {"customers": customers, "regions": list(REGION_CODES)})
            seconds[name] = perf_counter() - start

        start = perf_counter()
        await session.execute(text(SETTLED_LEDGERS))
        seconds["settled ledgers"] = perf_counter() - start

        start = perf_counter()
        await session.execute(text(INTERACTIONS))
        seconds["interactions"] = perf_counter() - start

        start = perf_counter()
        ids = list((await session.scalars(text("SELECT id FROM customers ORDER BY name"))).all())
        for chunk in range(0, len(ids), PII_CHUNK):
            part = ids[chunk : chunk + PII_CHUNK]
            values = _pii_values(cipher, part, pii_offset + chunk)
            await session.execute(PII_UPDATE, {"ids": part, "version": cipher.current_version, **values})
        seconds["pii"] = perf_counter() - start
    return seconds


SEEDED = (
    "customers",
    "loans",
    "installments",
    "repayment_allocations",
    "interactions",
    "warnings",
    "risk_cases",
)


async def analyse(db: Database, tenant: Tenant) -> float:
    """VACUUM ANALYZE the seeded tables, as autovacuum would leave them after a bulk load."""
    return await vacuum_analyze(db, tenant, SEEDED)


async def main(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    async with scratch_database() as scratch:
        lifecycle = TenantLifecycle(scratch.db, scratch.settings)
        per_tenant: list[float] = []
        steps: dict[str, float] = {}
        for number in range(args.tenants):
            slug = f"bench-seed-{number}"
            await lifecycle.create(slug, name=slug, admin_email=f"admin@{slug}.example")
            tenant = await lifecycle.get(slug)
            start = perf_counter()
            seconds = await seed_tenant(
                scratch.db, scratch.settings, tenant, args.customers, seed=args.seed, pii_offset=0
            )
            seconds["VACUUM ANALYZE"] = await analyse(scratch.db, tenant)
            per_tenant.append(perf_counter() - start)
            steps = {name: steps.get(name, 0.0) + value for name, value in seconds.items()}
            log(f"{slug}: {per_tenant[-1]:.1f} s " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
        sizes = await table_sizes(scratch.db, tenant)
        rounded = {name: round(value, 1) for name, value in steps.items()}
        results.append(
            latency_result(
                f"seed.tenant@{args.customers}",
                per_tenant,
                args.customers * len(per_tenant) / sum(per_tenant),
                notes=f"one tenant of {args.customers} customers per run ({args.tenants} runs), set-based "
                f"in one tenant transaction, VACUUM ANALYZE after; throughput in customers/s; seconds per "
                f"step over all runs: {json.dumps(rounded, ensure_ascii=False)}; last tenant: {sizes}",
            )
        )
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=1, help="tenants to build (default 1)")
    parser.add_argument(
        "--customers", type=int, default=100_000, help="customers per tenant (default 100,000)"
    )
    parser.add_argument("--seed", type=float, default=0.8, help="setseed() value, -1 to 1 (default 0.8)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    write_results(measured, arguments.results)
    print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
