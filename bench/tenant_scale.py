"""Tenant lifecycle with 1,000 tenants present: provisioning time (a spare claimed, and cold), the spare
pool's top-up, and migrate --all of one added column.

    TENANTCRM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/tenant_scale.py --tenants 1000

In a scratch database:

1. `--creates` tenants are provisioned by TenantLifecycle.create with (almost) no tenant present:
   the reference.
2. The database is filled up to N tenants by a bench-only seed (below), then VACUUM ANALYZE.
3. `--creates` more tenants are provisioned by TenantLifecycle.create with the spare pool empty:
   provision.create_cold@N, the full path (reference: step 1).
4. The pool is topped up to `--creates` spares, one spare a call: provision.spare_top_up@N, the cost
   moved off the request (ADR 0014).
5. `--creates` more tenants are provisioned by TenantLifecycle.create, each claiming a spare:
   provision.create@N (reference: step 3, the cold path with as many tenants present).
6. bench/revisions/bench_added_column.py (one revision after the shipped head, adding a nullable
   column to `customers`) is put beside the shipped revisions with a Migrator, and `migrate_all`
   (serial, as `tenants migrate --all`) brings every tenant to it: migrate.all_behind@N. Its
   reference is the floor: the same ALTER TABLE sent bare, one transaction per tenant on one
   connection, over the same tenants afterwards.

The seed: a template schema is migrated by Alembic once while every statement it sends is recorded
(bench/tenant_ops.py does the same to compare provisioning strategies); each seeded tenant then
gets, in one transaction, its registry row (active, at head), its role, its schema with the
default privileges provisioning gives, the recorded statements sent as ONE multi-statement script
with the schema name substituted and the parameters inlined, the remaining grants and its wrapped
keys; `--seed-connections` tenants at a time. No admin user is created. The first seeded schema
is checked against the template (columns, constraints, indexes, triggers, functions, seeded rows,
version). `--seed provision` uses TenantLifecycle.create for every tenant instead. Prints the
results as JSON and merges them into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from time import perf_counter

from common import RESULTS_PATH, Result, latency_result, percentile, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from tenant_ops import _captured_upgrade
from tenant_scope import vacuum_analyze

from tenantcrm.database import Database
from tenantcrm.pii.store import create_tenant_keys
from tenantcrm.settings import Settings
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.migrate_all import migrate_all
from tenantcrm.tenancy.models import TenantRow
from tenantcrm.tenancy.provisioning import (
    TenantLifecycle,
    _ensure_default_privileges,
    _grant_tenant_privileges,
)
from tenantcrm.tenancy.tenant import ACTIVE, SPARE, schema_for

CREATE_TARGET_MS = 300  # issue 8: provisioning p50 < 300 ms with 1,000 tenants present
MIGRATE_TARGET_S = 60  # issue 8: migrate-all of one added column over 1,000 tenants < 60 s
# One revision after the shipped head that adds a nullable column to customers.
ADDED_COLUMN_REVISIONS = Path(__file__).resolve().parent / "revisions"
FINGERPRINT = text(
    "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = :s),"
    " (SELECT count(*) FROM pg_constraint WHERE connamespace = to_regnamespace(:s)),"
    " (SELECT count(*) FROM pg_indexes WHERE schemaname = :s),"
    " (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
    "  WHERE c.relnamespace = to_regnamespace(:s)),"
    " (SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace(:s))"
)
SEEDED_ROWS = ("roles", "role_permissions", "classification_rules", "warning_rules", "retention_policies")
PLACEHOLDER = re.compile(r"\$(\d+)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no literal for {type(value).__name__}")


def _inlined(statement: str, parameters: object) -> list[str]:
    """The statement with asyncpg's $n placeholders replaced by literals (one per executemany row)."""
    if not parameters:
        return [statement]
    rows = parameters if isinstance(parameters, list) else [parameters]
    return [PLACEHOLDER.sub(lambda m, row=row: _literal(row[int(m.group(1)) - 1]), statement) for row in rows]


class Seed:
    """Alembic's statements for one template schema, replayed as one script per seeded tenant."""

    def __init__(self, template: str, recorded: list[tuple[str, object]]) -> None:
        self.template = template
        self.statements = [
            sql for statement, parameters in recorded for sql in _inlined(statement, parameters)
        ]

    @classmethod
    async def record(cls, db: Database) -> Seed:
        template = schema_for(secrets.token_hex(8))
        async with db.admin_engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{template}"'))
            recorded = await conn.run_sync(_captured_upgrade, template)
        return cls(template, recorded)

    def script(self, schema: str) -> str:
        return ";\n".join(statement.replace(self.template, schema) for statement in self.statements) + ";"

    async def tenant(self, lifecycle: TenantLifecycle, slug: str) -> None:
        tenant_id = secrets.token_hex(8)
        schema = schema_for(tenant_id)
        role = f'"{schema}"'
        async with lifecycle.db.admin_engine.begin() as conn:
            await conn.execute(
                TenantRow.__table__.insert().values(
                    id=tenant_id,
                    slug=slug,
                    name=f"Seeded {slug}",
                    status=ACTIVE,
                    schema_name=schema,
                    schema_version=migrations.head("tenant"),
                )
            )
            await conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
            await conn.execute(text(f'GRANT {role} TO "{lifecycle.settings.app_role}"'))
            raw = await conn.get_raw_connection()
            # Simple-query protocol: the whole script in one round trip, in this transaction.
            await raw.driver_connection.execute(f'CREATE SCHEMA "{schema}"')  # type: ignore[union-attr]
            # As provisioning does: default privileges first, so the script's tables are granted.
            await _ensure_default_privileges(conn, schema)
            await raw.driver_connection.execute(self.script(schema))  # type: ignore[union-attr]
            await _grant_tenant_privileges(conn, schema, every_table=False)
            await create_tenant_keys(conn, lifecycle.ring(), tenant_id)


async def _fingerprint(conn: AsyncConnection, schema: str) -> tuple[object, ...]:
    catalog = tuple((await conn.execute(FINGERPRINT, {"s": schema})).one())
    rows = tuple(
        [await conn.scalar(text(f'SELECT count(*) FROM "{schema}".{table}')) for table in SEEDED_ROWS]
    )
    version = await migrations.tenant_version(conn, schema)
    return catalog + rows + (version,)


async def timed_creates(
    lifecycle: TenantLifecycle, prefix: str, count: int, schemas: list[str] | None = None
) -> list[float]:
    """Seconds of each create; the schemas they got are appended to `schemas` if given."""
    seconds = []
    for i in range(count):
        slug = f"{prefix}-{i:04d}-{secrets.token_hex(2)}"
        start = perf_counter()
        created = await lifecycle.create(slug, name=f"Bench {slug}", admin_email=f"admin@{slug}.example")
        seconds.append(perf_counter() - start)
        if schemas is not None:
            schemas.append(created.schema)
    return seconds


async def timed_top_ups(lifecycle: TenantLifecycle, count: int) -> tuple[list[float], set[str]]:
    """Seconds of each of `count` top-ups that make one spare each, and the spares' schemas."""
    seconds = []
    for ready in range(1, count + 1):
        start = perf_counter()
        pool = await lifecycle.top_up_spares(ready)
        seconds.append(perf_counter() - start)
        assert (pool.ready, pool.made) == (ready, 1), f"expected one spare made, got {pool}"
    spares = {t["schema"] for t in await lifecycle.list_tenants(spares=True) if t["status"] == SPARE}
    return seconds, spares


async def seed_tenants(lifecycle: TenantLifecycle, count: int, how: str, connections: int) -> float:
    start = perf_counter()
    if how == "provision":
        await timed_creates(lifecycle, "seed", count)
        return perf_counter() - start
    seed = await Seed.record(lifecycle.db)
    await seed.tenant(lifecycle, "seed-00000")
    first = (await lifecycle.get("seed-00000")).schema
    async with lifecycle.db.admin_engine.connect() as conn:
        expected, got = await _fingerprint(conn, seed.template), await _fingerprint(conn, first)
    assert got == expected, f"the seeded schema differs from Alembic's: {got} != {expected}"
    numbers = iter(range(1, count))

    async def worker() -> None:
        for i in numbers:  # shared: each number is taken by one worker
            await seed.tenant(lifecycle, f"seed-{i:05d}")
            if (i + 1) % 100 == 0:
                log(f"seeded {i + 1}/{count} tenants ({perf_counter() - start:.0f} s)")

    # Several at once: the server's DDL is the cost (about 200-400 ms a tenant here), not Python.
    await asyncio.gather(*(worker() for _ in range(connections)))
    async with lifecycle.db.admin_engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{seed.template}" CASCADE'))
    return perf_counter() - start


class TimedLifecycle(TenantLifecycle):
    """The real lifecycle, noting how long each tenant's migration takes inside migrate_all."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.migrate_seconds: list[float] = []

    async def migrate_in(self, conn, tenant_id, schema, using=None) -> str:  # type: ignore[no-untyped-def]
        start = perf_counter()
        try:
            return await super().migrate_in(conn, tenant_id, schema, using)
        finally:
            self.migrate_seconds.append(perf_counter() - start)


async def bare_alter(lifecycle: TenantLifecycle) -> float:
    """The floor: the same one-column DDL over every tenant, a transaction each on one connection."""
    schemas = [t.schema for t in await lifecycle.migratable()]
    start = perf_counter()
    async with lifecycle.db.admin_engine.connect() as conn:
        for schema in schemas:
            async with conn.begin():
                await conn.execute(text(f'ALTER TABLE "{schema}".customers ADD COLUMN bench_floor text'))
    return perf_counter() - start


async def main(args: argparse.Namespace) -> list[Result]:
    n, creates = args.tenants, args.creates
    load_before = os.getloadavg()
    # Read the revisions once, now: a revision added to the checkout during the run must not
    # change what the run provisions or migrates to.
    migrator = migrations.Migrator("tenant", ADDED_COLUMN_REVISIONS)
    assert migrator.script.get_revision(migrator.head).down_revision == migrations.head("tenant")
    async with scratch_database() as scratch:
        lifecycle = TimedLifecycle(scratch.db, scratch.settings)
        log(f"{creates} creates with no tenant present")
        before = await timed_creates(lifecycle, "first", creates)
        log(f"seeding up to {n} tenants ({args.seed})")
        seeded = n - 3 * creates
        seed_seconds = await seed_tenants(lifecycle, seeded, args.seed, args.seed_connections)
        vacuum_seconds = await vacuum_analyze(scratch.db)
        log(f"seeded {seeded} in {seed_seconds:.0f} s, VACUUM ANALYZE {vacuum_seconds:.0f} s")
        log(f"{creates} cold creates (no spare), {creates} spares made, {creates} creates claiming them")
        cold = await timed_creates(lifecycle, "cold", creates)
        top_ups, spares = await timed_top_ups(lifecycle, creates)
        claimed: list[str] = []
        after = await timed_creates(lifecycle, "last", creates, claimed)
        assert set(claimed) == spares, "every pooled create must claim one of the spares"
        present = len(await lifecycle.migratable())
        assert present == n, f"expected {n} tenants, found {present}"

        log(f"migrate --all: one added column over {n} tenants")
        lifecycle.migrate_seconds.clear()  # the creates' migrations are not this
        start = perf_counter()
        outcomes = await migrate_all(lifecycle, using=migrator)
        wall = perf_counter() - start
        statuses = {o.status for o in outcomes}
        assert statuses == {"migrated"} and len(outcomes) == n, f"expected all migrated, got {statuses}"
        log(f"{wall:.1f} s; the floor (bare ALTER TABLE)")
        floor = await bare_alter(lifecycle)
        log(f"{floor:.1f} s")
    load_after = os.getloadavg()
    load = f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min)"

    first, cold_p50, last = (percentile(seconds, 50) * 1000 for seconds in (before, cold, after))
    create = latency_result(
        f"provision.create@{n}",
        after,
        len(after) / sum(after),
        reference=round(cold_p50, 3),
        ratio=round(last / cold_p50, 3),
        target=f"p50 < {CREATE_TARGET_MS} ms",
        met=last < CREATE_TARGET_MS,
        notes=(
            f"TenantLifecycle.create of {creates} tenants with {n - creates} to {n - 1} present (seeded:"
            f" {args.seed}), each claiming a spare made ahead (ADR 0014); throughput in tenants/s;"
            f" reference = p50 of provision.create_cold@{n} (ms), ratio = pooled / cold; {load}"
        ),
    )
    create_cold = latency_result(
        f"provision.create_cold@{n}",
        cold,
        len(cold) / sum(cold),
        reference=round(first, 3),
        ratio=round(cold_p50 / first, 3),
        target=f"p50 < {CREATE_TARGET_MS} ms",
        met=cold_p50 < CREATE_TARGET_MS,
        notes=(
            f"TenantLifecycle.create with no spare (the full path: schema, Alembic to head, grants, keys,"
            f" admin) of {creates} tenants with {n - 3 * creates} to {n - 2 * creates - 1} present;"
            f" throughput in tenants/s; reference = p50 of {creates} creates with 0 to {creates - 1}"
            f" present (ms), ratio = growth; {load}"
        ),
    )
    top_up = latency_result(
        f"provision.spare_top_up@{n}",
        top_ups,
        len(top_ups) / sum(top_ups),
        reference=round(cold_p50, 3),
        ratio=round(percentile(top_ups, 50) * 1000 / cold_p50, 3),
        notes=(
            f"TenantLifecycle.top_up_spares making one spare a call, {creates} calls with about"
            f" {n - 2 * creates} tenants present: the work moved off the create, done ahead by"
            f" `tenants spares` or its schedule; throughput in spares/s; reference = p50 of"
            f" provision.create_cold@{n} (ms); {load}"
        ),
    )
    per_tenant_target = MIGRATE_TARGET_S / 1000
    migrate = latency_result(
        f"migrate.all_behind@{n}",
        lifecycle.migrate_seconds,
        n / wall,
        reference=round(floor, 2),
        ratio=round(wall / floor, 3),
        target=f"< {MIGRATE_TARGET_S} s for 1,000 tenants ({per_tenant_target * 1000:.0f} ms per tenant)",
        met=wall / n < per_tenant_target,
        notes=(
            f"migrate_all (serial, as tenants migrate --all) over {n} tenants one revision behind, the"
            f" revision adding one nullable column to customers: {wall:.1f} s in all; p50/p99 per tenant"
            f" (Alembic, grants, key check, registry mirror, one transaction each); throughput in"
            f" tenants/s; reference = the same ALTER TABLE sent bare over the same tenants (s), ratio ="
            f" migrate_all / bare; {load}"
        ),
    )
    return [create, create_cold, top_up, migrate]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=1000, help="tenants present (default 1000)")
    parser.add_argument(
        "--creates", type=int, default=20, help="timed creates at the start, cold and pooled (default 20)"
    )
    parser.add_argument("--seed", choices=("replay", "provision"), default="replay")
    parser.add_argument("--seed-connections", type=int, default=2, help="replay seeds at once (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    args = parser.parse_args()
    if args.tenants < 3 * args.creates + 1:
        parser.error("--tenants must be more than three times --creates")
    return args


if __name__ == "__main__":
    args = parse_args()
    results = asyncio.run(main(args))
    write_results(results, args.results)
    print(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
