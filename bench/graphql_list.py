"""GraphQL customers(first: 50) with loans and next instalments: the app against its floor and PostGraphile.

    .venv/bin/python bench/graphql_list.py --customers 100000 [--requests 400] [--profile app.txt]
        [--keep-database NAME]

Seeds one tenant (bench/seed.py: 100,000 customers, about 140,000 loans, PII encrypted and
masked), then runs three servers over it, each in a process of its own on loopback:

- app: `tenantcrm serve` (production settings, uvicorn), QUERY with an API token: token and
  tenant checked, one tenant transaction (role and search_path), CustomerService and the loaders;
- floor: bench/floor_server.py, raw ASGI answering the same JSON with one hand-written SQL over
  asyncpg, as the schema's owner, no authentication;
- postgraphile: PostGraphile 4.14.1 from the npm registry (bench/postgraphile, `npm ci` on first
  use) over the same schema as its owner, PG_QUERY: the same customers, loans and instalment (a
  computed column `loans_next_installment`, created by this bench), totalCount included.

The same lean client (bench/http_load.py) sends each server `--requests` requests at 1 client and
at 32 clients (closed loop, keep-alive), in two rounds (app, floor, PostGraphile, then the reverse)
after a warm-up. The app's first answer must equal the floor's; PostGraphile's must name the
same customers and loans. Entries: graphql_list.<server>.c<K>@N. The app's c1 entry has
ratio = p50 / floor p50 (target <= 1.5); its c32 entry ratio = throughput / PostGraphile's
(target >= 1.5) (issue 8). With --profile FILE, py-spy (if installed) samples the app during its
c32 runs and writes collapsed stacks to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common import (
    RESULTS_PATH,
    Result,
    Scratch,
    add_kept_database_arguments,
    drop_kept_database,
    kept_or_scratch_database,
    mark_kept,
    write_results,
)
from http_load import (
    BIN,
    Load,
    Server,
    app_server,
    floor_server,
    load_average,
    log,
    postgraphile_server,
    request_bytes,
    run_load,
)
from seed import analyse, seed_tenant
from sqlalchemy import text

from tenantcrm.auth.service import create_api_token, find_user_by_email
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

P50_TARGET = 1.5  # app p50 / floor p50 at 1 client, at most
THROUGHPUT_TARGET = 1.5  # app throughput / PostGraphile's at 32 clients, at least
SLUG = "bench-graphql"
ADMIN_EMAIL = f"admin@{SLUG}.example"

QUERY = """query BenchCustomerList {
  customers(first: 50) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id name kind regionCode riskLevel status monthlyIncome creditGrade nationalId phone createdAt
        loans {
          id product amount status classification
          nextInstallment { number dueDate payment outstanding }
        }
      }
    }
  }
}"""
PG_QUERY = """query BenchCustomerList {
  allCustomers(first: 50, orderBy: [CREATED_AT_DESC, ID_DESC]) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        id name kind regionCode riskLevel status monthlyIncome creditGrade nationalIdMasked phoneMasked
        createdAt
        loansByCustomerId(orderBy: [START_DATE_ASC, CREATED_AT_ASC, ID_ASC]) {
          nodes {
            id product amount status classification
            nextInstallment { number dueDate principal interest principalPaid interestPaid }
          }
        }
      }
    }
  }
}"""
# PostGraphile exposes a function taking a table row as a computed column of that table's type.
NEXT_INSTALLMENT_FUNCTION = """
CREATE FUNCTION "{schema}".loans_next_installment(l "{schema}".loans) RETURNS "{schema}".installments
LANGUAGE sql STABLE AS $$
    SELECT * FROM "{schema}".installments i
    WHERE i.loan_id = l.id AND i.due_date >= current_date
      AND i.principal + i.interest > i.principal_paid + i.interest_paid
    ORDER BY i.number LIMIT 1
$$
"""


def graphql_request(query: str, token: str | None = None) -> bytes:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return request_bytes("POST", "/graphql", headers, json.dumps({"query": query}).encode())


def answer_check(name: str, expected_length: int):
    """A cheap check of every answer (a full parse would cost the client more than some servers):
    no GraphQL errors, and about the size of the validated first answer."""

    def check(number: int, body: bytes) -> None:
        if b'"errors"' in body or abs(len(body) - expected_length) > expected_length // 5:
            raise SystemExit(f"{name}: unexpected answer to request {number}: {body[:300]!r}")

    return check


def _normalised(body: bytes) -> dict[str, Any]:
    return json.loads(body)["data"]["customers"]


def validate(app: bytes, floor: bytes, postgraphile: bytes) -> dict[str, Any]:
    """The app's answer equals the floor's; PostGraphile names the same customers and loans."""
    ours, reference = _normalised(app), _normalised(floor)
    if ours != reference:
        first = next((a, b) for a, b in zip(ours["edges"], reference["edges"], strict=False) if a != b)
        raise SystemExit(f"app and floor answers differ, e.g.\n{first[0]}\n{first[1]}")
    peer = json.loads(postgraphile)
    if "errors" in peer:
        raise SystemExit(f"PostGraphile: {peer['errors']}")
    peer = peer["data"]["allCustomers"]
    ours_ids = [(e["node"]["id"], [loan["id"] for loan in e["node"]["loans"]]) for e in ours["edges"]]
    peer_ids = [
        (e["node"]["id"], [loan["id"] for loan in e["node"]["loansByCustomerId"]["nodes"]])
        for e in peer["edges"]
    ]
    if peer["totalCount"] != ours["totalCount"] or peer_ids != ours_ids:
        raise SystemExit("PostGraphile's answer names other customers or loans than the app's")
    due = [loan["nextInstallment"] for e in ours["edges"] for loan in e["node"]["loans"]]
    peer_due = [
        loan["nextInstallment"] for e in peer["edges"] for loan in e["node"]["loansByCustomerId"]["nodes"]
    ]
    if [d and d["dueDate"] for d in due] != [d and d["dueDate"] for d in peer_due]:
        raise SystemExit("PostGraphile's next instalments differ from the app's")
    return {
        "customers": len(ours["edges"]),
        "loans": len(due),
        "next_due": sum(1 for d in due if d),
        "total": ours["totalCount"],
    }


async def api_token(scratch: Scratch, tenant: Tenant, email: str) -> str:
    async with tenant_session(scratch.db, tenant) as session:
        user = await find_user_by_email(session, email)
        assert user is not None
        return await create_api_token(session, tenant, user, "bench")


async def first_answer(server: Server, request: bytes) -> bytes:
    from http_load import Connection

    connection = await Connection.open(server.port)
    try:
        status, body = await connection.send(request)
    finally:
        connection.close()
    if status != 200:
        raise SystemExit(f"{server.name}: HTTP {status}: {body[:300]!r}")
    return body


def start_profile(server: Server, path: Path | None) -> subprocess.Popen | None:
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if path is None:
        return None
    if py_spy is None:
        log("--profile: py-spy is not installed (.venv/bin/pip install py-spy); not profiling")
        return None
    argv = [py_spy, "record", "--pid", str(server.process.pid), "--format", "raw", "--output", str(path)]
    return subprocess.Popen([*argv, "--rate", "200", "--nonblocking"], stdout=subprocess.DEVNULL)


def stop_profile(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
        profiler.wait(timeout=60)


async def measure(
    servers: list[tuple[Server, bytes, int]],
    concurrency: int,
    requests: int,
    warmup: int,
    rounds: int,
    profile: Path | None = None,
) -> dict[str, Load]:
    """Each server `rounds` times, the order reversed every other round; loads merged per server."""
    merged = {server.name: Load() for server, _, _ in servers}
    for round_number in range(rounds):
        order = servers if round_number % 2 == 0 else list(reversed(servers))
        for server, request, length in order:
            profiler = start_profile(server, profile) if server.name == "app" and round_number == 0 else None
            try:
                load = await run_load(
                    server,
                    lambda _n, r=request: r,
                    answer_check(server.name, length),
                    concurrency,
                    requests // rounds,
                    warmup,
                )
            finally:
                stop_profile(profiler)
            merged[server.name].seconds += load.seconds
            merged[server.name].wall += load.wall
            merged[server.name].cpu += load.cpu
            log(
                f"c{concurrency} {server.name}: p50 {load.p(50):.1f} ms, p99 {load.p(99):.1f} ms, "
                f"{load.throughput:.0f} req/s, {load.cpu_ms_per_request:.1f} ms CPU/request "
                f"(load average {load_average()})"
            )
    return merged


async def prepare(args: argparse.Namespace, scratch: Scratch, comment: str | None) -> Tenant:
    """The seeded tenant: seeded now, or found in the kept database of --keep-database (migrated to
    head, so a new migration applies to it)."""
    n = args.customers
    lifecycle = TenantLifecycle(scratch.db, scratch.settings)
    marker = f"bench/graphql_list.py {n} customers"
    if comment is not None:
        if comment != marker:
            raise SystemExit(
                f"the kept database {args.keep_database} holds no complete seed of {n} customers "
                f"({comment or 'no seed recorded'}); drop it with --drop-database {args.keep_database}"
            )
        (outcome,) = await lifecycle.migrate(SLUG)
        if outcome.status == "failed":
            raise SystemExit(f"migrating the kept tenant failed: {outcome.error}")
        log(f"reusing {args.keep_database}; tenant {outcome.status} at {outcome.to_version}")
        return await lifecycle.get(SLUG)
    await lifecycle.create(SLUG, name="Bench GraphQL", admin_email=ADMIN_EMAIL)
    tenant = await lifecycle.get(SLUG)
    log(f"seeding {n} customers")
    steps = await seed_tenant(scratch.db, scratch.settings, tenant, n)
    steps["VACUUM ANALYZE"] = await analyse(scratch.db, tenant)
    log("seeded: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
    async with scratch.db.admin_engine.begin() as conn:
        await conn.execute(text(NEXT_INSTALLMENT_FUNCTION.format(schema=tenant.schema)))
    if args.keep_database:
        await mark_kept(scratch, marker)
    return tenant


async def main(args: argparse.Namespace) -> list[Result]:
    n = args.customers
    if args.drop_database:
        await drop_kept_database(args.drop_database)
        log(f"dropped {args.drop_database}")
        return []
    async with kept_or_scratch_database(args.keep_database) as (scratch, comment):
        tenant = await prepare(args, scratch, comment)
        token = await api_token(scratch, tenant, ADMIN_EMAIL)

        servers: list[Server] = []
        try:
            servers = [
                app_server(scratch),
                floor_server(scratch, tenant.schema),
                postgraphile_server(scratch, tenant.schema),
            ]
            requests = [graphql_request(QUERY, token), graphql_request(QUERY), graphql_request(PG_QUERY)]
            bodies = [await first_answer(s, r) for s, r in zip(servers, requests, strict=True)]
            shape = validate(*bodies)
            log(f"answers agree: {shape}; bytes: {[len(b) for b in bodies]}")
            plan = [(s, r, len(b)) for s, r, b in zip(servers, requests, bodies, strict=True)]
            loads = {
                1: await measure(plan, 1, args.requests, args.warmup, args.rounds),
                32: await measure(plan, 32, args.requests * 4, args.warmup, args.rounds, args.profile),
            }
            app_rss = servers[0].rss_mb()
        finally:
            for server in servers:
                server.stop()
    return results(n, loads, shape, app_rss, [len(b) for b in bodies], args)


def results(
    n: int,
    loads: dict[int, dict[str, Load]],
    shape: dict[str, Any],
    app_rss: float,
    sizes: list[int],
    args: argparse.Namespace,
) -> list[Result]:
    what = {
        "app": f"tenantcrm serve (production settings, one uvicorn process), the query with an API token; "
        f"answer {sizes[0]} bytes; app RSS after the runs {app_rss:.0f} MB",
        "floor": f"raw ASGI + asyncpg, one hand-written SQL building the same JSON, as the schema owner, no "
        f"authentication; answer {sizes[1]} bytes",
        "postgraphile": f"PostGraphile 4.14.1 (node) as the schema owner, the equivalent query; answer "
        f"{sizes[2]} bytes",
    }
    common_notes = (
        f"customers(first: 50) with loans and next due instalment and totalCount over {n} customers "
        f"({shape['loans']} loans on the page, {shape['next_due']} with a next instalment); closed-loop "
        f"keep-alive clients on loopback; {args.rounds} rounds alternating the servers' order; load "
        f"average at the end {load_average()}"
    )
    out: list[Result] = []
    for concurrency, by_server in loads.items():
        for name, load in by_server.items():
            out.append(
                load.result(
                    f"graphql_list.{name}.c{concurrency}@{n}",
                    f"{what[name]}; {concurrency} client(s), {len(load.seconds)} requests, server CPU "
                    f"{load.cpu_ms_per_request:.1f} ms per request; {common_notes}; throughput in requests/s",
                )
            )
    by_name = {r.name: r for r in out}
    c1, c32 = by_name[f"graphql_list.app.c1@{n}"], by_name[f"graphql_list.app.c32@{n}"]
    floor1, peer32 = by_name[f"graphql_list.floor.c1@{n}"], by_name[f"graphql_list.postgraphile.c32@{n}"]
    c1.reference, c1.ratio = floor1.p50_ms, round(c1.p50_ms / floor1.p50_ms, 3)
    c1.target, c1.met = f"ratio = p50 / floor p50 <= {P50_TARGET} (issue 8)", c1.ratio <= P50_TARGET
    c32.reference, c32.ratio = peer32.throughput, round(c32.throughput / peer32.throughput, 3)
    c32.target = f"ratio = throughput / PostGraphile throughput >= {THROUGHPUT_TARGET} (issue 8)"
    c32.met = c32.ratio >= THROUGHPUT_TARGET
    for result in out:
        if result.name.startswith("graphql_list.postgraphile.") or result.name.startswith(
            "graphql_list.floor."
        ):
            app = by_name[result.name.replace(".postgraphile.", ".app.").replace(".floor.", ".app.")]
            result.notes += (
                f"; the app's p50 / this p50 = {app.p50_ms / result.p50_ms:.2f}, its throughput / "
            )
            result.notes += f"this = {app.throughput / result.throughput:.2f}"
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000, help="customers (default 100,000)")
    parser.add_argument(
        "--requests",
        type=int,
        default=400,
        help="measured requests per server at 1 client; 4x at 32 (default 400)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per run (default 50)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the servers (default 2)")
    parser.add_argument("--profile", type=Path, help="py-spy collapsed stacks of the app at 32 clients")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    add_kept_database_arguments(parser)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    write_results(measured, arguments.results)
    print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
