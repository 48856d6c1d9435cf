"""Spread load: the GraphQL customer list over 1,000 active tenants against the same over 10.

    .venv/bin/python bench/spread.py --tenants 1000 [--customers 200] [--requests 2000]

Provisions N tenants (TenantLifecycle.create, as `tenants create` does; about 4-5 tenants/s here),
seeds each with M customers and their book (bench/seed.py, PII included) and gives each an API
token. Then one app process (`tenantcrm serve`, production settings, as bench/graphql_list.py
runs it) answers bench/graphql_list.py's QUERY (customers(first: 50) with loans, next instalments
and totalCount), each request for a tenant drawn at random:

- spread.list.tenants10: over 10 of the tenants, measured before and after the wide run (merged);
- spread.list.tenants<N>: over all N tenants, after one unmeasured request per tenant.

With a schema per tenant, every pooled connection meets N schemas: PostgreSQL's catalog caches
(relcache, plans re-made when search_path changes) and asyncpg's prepared statements are per
connection, so the spread pays what a few tenants do not. Target (issue 8): p99(N) / p99(10) <=
1.25 and the app process under 300 MB resident (its peak, VmHWM, after both runs). Prints JSON
and merges into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from dataclasses import asdict
from pathlib import Path
from time import perf_counter

from common import RESULTS_PATH, Result, scratch_database, write_results
from graphql_list import QUERY, api_token, graphql_request
from http_load import Load, Server, app_server, load_average, log, run_load
from seed import seed_tenant

from tenantcrm.tenancy.provisioning import TenantLifecycle

P99_TARGET = 1.25
MEMORY_TARGET_MB = 300
FEW = 10


def check(number: int, body: bytes) -> None:
    if b'"errors"' in body or b'"totalCount"' not in body:
        raise SystemExit(f"unexpected answer to request {number}: {body[:300]!r}")


async def spread_load(
    server: Server, requests: list[bytes], concurrency: int, count: int, warmup: int, seed: int
) -> Load:
    rng = random.Random(seed)
    order = [rng.randrange(len(requests)) for _ in range(count + warmup)]
    return await run_load(server, lambda n: requests[order[n]], check, concurrency, count, warmup)


async def main(args: argparse.Namespace) -> list[Result]:
    n = args.tenants
    async with scratch_database() as scratch:
        lifecycle = TenantLifecycle(scratch.db, scratch.settings)
        log(f"provisioning and seeding {n} tenants of {args.customers} customers")
        start = perf_counter()
        requests: list[bytes] = []
        for number in range(n):
            slug = f"spread-{number:04d}"
            created = await lifecycle.create(slug, name=slug, admin_email=f"admin@{slug}.example")
            tenant = await lifecycle.get(slug)
            await seed_tenant(
                scratch.db, scratch.settings, tenant, args.customers, seed=0.1 + number / (2 * n)
            )
            requests.append(graphql_request(QUERY, await api_token(scratch, tenant, created.admin_email)))
            if (number + 1) % 100 == 0:
                log(f"{number + 1} tenants in {perf_counter() - start:.0f} s")
        built = perf_counter() - start
        log(f"{n} tenants built in {built:.0f} s")

        server = app_server(scratch)
        try:
            few = requests[:FEW]
            c, per_run = args.concurrency, args.requests // 2
            # Warm: the process and its pool on the few tenants; then every tenant once.
            before = await spread_load(server, few, c, per_run, args.warmup, 1)
            log(f"{FEW} tenants: p99 {before.p(99):.1f} ms, RSS {server.rss_mb():.0f} MB")
            await spread_load(server, requests, c, len(requests), 0, 2)
            wide = await spread_load(server, requests, c, args.requests, 0, 3)
            log(f"{n} tenants: p99 {wide.p(99):.1f} ms, RSS {server.rss_mb():.0f} MB")
            after = await spread_load(server, few, c, per_run, 0, 4)
            log(f"{FEW} tenants again: p99 {after.p(99):.1f} ms, RSS {server.rss_mb():.0f} MB")
            rss, peak = server.rss_mb(), server.peak_rss_mb()
        finally:
            server.stop()
    few_load = Load(before.seconds + after.seconds, before.wall + after.wall, before.cpu + after.cpu)
    common = (
        f"bench/graphql_list.py's customers(first: 50) query with loans, next instalments and totalCount, "
        f"a random tenant per request, {c} clients over loopback, one app process (production settings); "
        f"{n} tenants of {args.customers} customers each, built in {built:.0f} s; app RSS at the end "
        f"{rss:.0f} MB, peak {peak:.0f} MB; load average at the end {load_average()}"
    )
    few_result = few_load.result(
        f"spread.list.tenants{FEW}@{n}",
        f"over {FEW} of the tenants, {len(few_load.seconds)} requests (half before the wide run, half "
        f"after); server CPU {few_load.cpu_ms_per_request:.1f} ms per request; {common}",
    )
    ratio = wide.p(99) / few_load.p(99)
    wide_result = wide.result(
        f"spread.list.tenants{n}@{n}",
        f"over all {n} tenants, {len(wide.seconds)} requests after one per tenant unmeasured; server CPU "
        f"{wide.cpu_ms_per_request:.1f} ms per request; p50 / p50 over {FEW} = "
        f"{wide.p(50) / few_load.p(50):.2f}; reference = p99 over {FEW} tenants (ms); {common}",
    )
    wide_result.reference, wide_result.ratio = few_result.p99_ms, round(ratio, 3)
    wide_result.target = (
        f"ratio = p99 / p99 over {FEW} tenants <= {P99_TARGET}, app peak RSS < {MEMORY_TARGET_MB} MB"
    )
    wide_result.met = ratio <= P99_TARGET and peak < MEMORY_TARGET_MB
    return [wide_result, few_result]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=1000, help="tenants (default 1,000)")
    parser.add_argument("--customers", type=int, default=200, help="customers per tenant (default 200)")
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests over all tenants; as many over 10"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="clients (default 8)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first (default 200)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    write_results(measured, arguments.results)
    print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
