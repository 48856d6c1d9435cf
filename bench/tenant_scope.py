"""What tenant scoping costs: per-transaction role switch, provisioning, migrating all tenants.

    .venv/bin/python bench/tenant_scope.py --tenants 200

Provisions N tenants (each with a few customers) in a scratch database, then measures:

- provision.create: TenantLifecycle.create per tenant; the ratio compares the p50 of the
  last 10 tenants with the first 10, so it shows growth with the number of tenants.
- migrate.all_current: TenantLifecycle.migrate() over every tenant when all are at head.
- tenant_scope.reference: the floor without a role switch: the admin (owner) engine runs
  set_config('search_path') + SELECT count(*) FROM customers + COMMIT.
- tenant_scope.tenant_session: tenant_session(db, tenant) (role and search_path in one
  statement) + the same query; ratio = its tps / the reference's tps.

Both scope modes run the same random tenant sequence with the same number of workers and
pooled connections, alternating (A B B A ...) so drift on the server hits both alike.
Prints the results as JSON and merges them into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from time import perf_counter

from common import RESULTS_PATH, Result, latency_result, percentile, scratch_database, write_results
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tenantcrm.database import Database, async_url
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import MigrationOutcome, TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

SEARCH_PATH_ONLY = text("SELECT set_config('search_path', :schema, true)")
COUNT_CUSTOMERS = text("SELECT count(*) FROM customers")
INSERT_CUSTOMER = text("INSERT INTO customers (kind, name) VALUES ('individual', :name)")
SCOPE_TARGET = 0.8  # DESIGN.md "Tenancy": 8.6k / 10.0k tps with SET LOCAL ROLE added
CREATE_TARGET_MS = 300  # issue 8: provisioning a tenant takes p50 < 300 ms

Transaction = Callable[[Tenant], Awaitable[None]]


class TimedLifecycle(TenantLifecycle):
    """The real lifecycle, noting how long migrate() spends on each tenant."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.migrate_seconds: list[float] = []

    async def _migrate_one(self, tenant: Tenant) -> MigrationOutcome:
        start = perf_counter()
        try:
            return await super()._migrate_one(tenant)
        finally:
            self.migrate_seconds.append(perf_counter() - start)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def provision(
    lifecycle: TenantLifecycle, count: int, customers: int
) -> tuple[list[Tenant], list[float]]:
    """Create `count` tenants one after the other; return them and each create's duration."""
    tenants: list[Tenant] = []
    seconds: list[float] = []
    for i in range(count):
        slug = f"bench-{i:05d}"
        start = perf_counter()
        await lifecycle.create(slug, name=f"Bench {i}", admin_email=f"admin@{slug}.example")
        seconds.append(perf_counter() - start)
        tenant = await lifecycle.get(slug)
        async with tenant_session(lifecycle.db, tenant) as session:
            for n in range(customers):
                await session.execute(INSERT_CUSTOMER, {"name": f"Customer {n}"})
        tenants.append(tenant)
        if (i + 1) % 100 == 0:
            log(f"provisioned {i + 1}/{count} tenants")
    return tenants, seconds


async def run(transaction: Transaction, picks: Sequence[Tenant], workers: int) -> tuple[list[float], float]:
    """Run one transaction per pick with `workers` concurrent tasks; latencies and wall time."""
    queue = iter(picks)
    latencies: list[float] = []

    async def worker() -> None:
        for tenant in queue:  # shared iterator: each pick is taken by exactly one worker
            start = perf_counter()
            await transaction(tenant)
            latencies.append(perf_counter() - start)

    start = perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies, perf_counter() - start


async def measure_scope(
    db: Database, database_url: str, tenants: list[Tenant], args: argparse.Namespace, expected: int
) -> dict[str, tuple[list[float], float]]:
    """Latencies and total wall time of the reference and of tenant_session."""
    # The reference pool has as many connections as the workers, like the app pool in use.
    owner_engine = create_async_engine(async_url(database_url), pool_size=args.workers, max_overflow=0)
    owner_sessions = async_sessionmaker(owner_engine, expire_on_commit=False)

    async def reference(tenant: Tenant) -> None:
        async with owner_sessions() as session, session.begin():
            await session.execute(SEARCH_PATH_ONLY, {"schema": tenant.schema})
            assert await session.scalar(COUNT_CUSTOMERS) == expected

    async def scoped(tenant: Tenant) -> None:
        async with tenant_session(db, tenant) as session:
            assert await session.scalar(COUNT_CUSTOMERS) == expected

    modes: dict[str, Transaction] = {"reference": reference, "tenant_session": scoped}
    totals: dict[str, tuple[list[float], float]] = {name: ([], 0.0) for name in modes}
    try:
        rng = random.Random(args.seed)
        warmup = [rng.choice(tenants) for _ in range(args.warmup)]
        for transaction in modes.values():
            await run(transaction, warmup, args.workers)
        per_round = args.transactions // args.rounds
        for round_ in range(args.rounds):
            picks = [rng.choice(tenants) for _ in range(per_round)]
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for name in order:
                latencies, elapsed = await run(modes[name], picks, args.workers)
                seen, wall = totals[name]
                totals[name] = (seen + latencies, wall + elapsed)
    finally:
        await owner_engine.dispose()
    return totals


async def vacuum_analyze(db: Database) -> float:
    """Settle the catalogs after thousands of DDL statements, so autovacuum stays out of the way."""
    start = perf_counter()
    async with db.admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    return perf_counter() - start


async def main(args: argparse.Namespace) -> list[Result]:
    n = args.tenants
    async with scratch_database() as scratch:
        lifecycle = TimedLifecycle(scratch.db, scratch.settings)

        log(f"provisioning {n} tenants in {scratch.settings.database_url}")
        tenants, create_seconds = await provision(lifecycle, n, args.customers)

        start = perf_counter()
        outcomes = await lifecycle.migrate()
        migrate_wall = perf_counter() - start
        statuses = {o.status for o in outcomes}
        assert statuses == {"current"}, f"expected every tenant current, got {statuses}"

        vacuum_seconds = await vacuum_analyze(scratch.db)
        log(f"VACUUM ANALYZE took {vacuum_seconds:.1f} s; measuring tenant scope")
        scope = await measure_scope(scratch.db, scratch.database_url, tenants, args, args.customers)

    first = percentile(create_seconds[:10], 50) * 1000
    last = percentile(create_seconds[-10:], 50) * 1000
    create = latency_result(
        f"provision.create@{n}",
        create_seconds,
        n / sum(create_seconds),
        reference=round(first, 3),
        ratio=round(last / first, 3),
        target=f"p50 < {CREATE_TARGET_MS} ms",
        notes=(
            f"TenantLifecycle.create, one tenant after the other, {n} tenants; throughput in "
            f"tenants/s; reference = p50 of the first 10 (ms), ratio = p50 of the last 10 "
            f"({last:.1f} ms) / reference, i.e. growth with the tenant count"
        ),
    )
    create.met = create.p50_ms is not None and create.p50_ms < CREATE_TARGET_MS

    migrate = latency_result(
        f"migrate.all_current@{n}",
        lifecycle.migrate_seconds,
        n / migrate_wall,
        notes=(
            f"TenantLifecycle.migrate() over {n} tenants already at head: per-tenant time, "
            f"throughput in tenants/s, {migrate_wall:.2f} s in all; no reference or target"
        ),
    )

    ref_latencies, ref_wall = scope["reference"]
    ref_tps = len(ref_latencies) / ref_wall
    common_notes = (
        f"{len(ref_latencies)} transactions, {args.workers} asyncio workers, random tenant of {n} "
        f"each, {args.rounds} alternating rounds after {args.warmup} warm-up transactions; throughput in tps"
    )
    reference = latency_result(
        f"tenant_scope.reference@{n}",
        ref_latencies,
        ref_tps,
        notes=(
            "admin (owner) engine, no role switch: BEGIN + set_config('search_path') + "
            f"SELECT count(*) FROM customers + COMMIT; {common_notes}"
        ),
    )
    scoped_latencies, scoped_wall = scope["tenant_session"]
    scoped_tps = len(scoped_latencies) / scoped_wall
    scoped = latency_result(
        f"tenant_scope.tenant_session@{n}",
        scoped_latencies,
        scoped_tps,
        reference=round(ref_tps, 1),
        ratio=round(scoped_tps / ref_tps, 3),
        target=f"ratio >= {SCOPE_TARGET} (DESIGN.md: 8.6k / 10.0k tps)",
        met=scoped_tps / ref_tps >= SCOPE_TARGET,
        notes=(
            "app engine, tenant_session(db, tenant): set_config('role') and set_config('search_path')"
            f" in one statement + the same query + COMMIT; reference = tps of the reference; {common_notes}"
        ),
    )
    return [create, migrate, reference, scoped]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=200, help="tenants to provision (default 200)")
    parser.add_argument("--customers", type=int, default=5, help="customers per tenant (default 5)")
    parser.add_argument("--transactions", type=int, default=4000, help="measured per mode (default 4000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent asyncio workers (default 8)")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured transactions per mode")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per mode (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    args = parser.parse_args()
    if args.tenants < 10:
        parser.error("--tenants must be at least 10 (the growth ratio compares first and last 10)")
    return args


if __name__ == "__main__":
    args = parse_args()
    results = asyncio.run(main(args))
    write_results(results, args.results)
    print(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
