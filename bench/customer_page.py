"""The customer page, full and as the htmx partial, against the floor's one-SQL answer for that customer.

    .venv/bin/python bench/customer_page.py --customers 20000 [--requests 300]

Seeds one tenant (bench/seed.py), signs its admin in (a real web session cookie from
auth.service.sign_in) and picks the customer with the most loans. Then, over loopback and with
the app in a process of its own (production settings, as bench/graphql_list.py runs it):

- page.customer.full: GET /t/<slug>/customers/<id>?tab=loans, the whole page a browser loads:
  layout, the customer's profile, alerts (live warnings, open risk cases) and the loans tab
  (every loan with its arrears and next due date, the customer's collateral);
- page.customer.partial: the same URL with HX-Request and HX-Target: customer-tabs, what htmx
  asks for when the loans tab is clicked: only the tabs, same data but no layout and no alerts;
- page.customer.floor: bench/floor_server.py's GET /customer/<id>: the same customer, loans with
  their next instalments, warnings and risk cases as JSON from one hand-written SQL, as the
  schema owner, no session, no template.

Reference = the floor's p50, ratio = p50 / floor p50: what the page costs over the least any
server can do for the same data (session and scope checks, five to ten statements, rendering).
The full page / partial ratio is in the notes: what htmx saves per tab click. No target in issue
8; at 1 and 8 clients, two rounds alternating the order. Prints JSON and merges into
bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

from common import RESULTS_PATH, Result, scratch_database, write_results
from http_load import Load, Server, app_server, floor_server, load_average, log, request_bytes, run_load
from seed import analyse, seed_tenant
from sqlalchemy import text

from tenantcrm.auth.service import sign_in
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.scope import session_cookie_name

SLUG = "bench-page"
PASSWORD = "bench-password-" + "p" * 8
MOST_LOANS = text(
    "SELECT customer_id, count(*) FROM loans GROUP BY customer_id ORDER BY count(*) DESC, customer_id LIMIT 1"
)


def check_for(kind: str, customer_id: str):
    """Every answer names the customer (its id: in the JSON, and in the page's links); the full page
    is a document, the partial is not."""
    marker = customer_id.encode()

    def check(number: int, body: bytes) -> None:
        document = b"<html" in body[:400]
        if marker not in body or (kind != "floor" and (kind == "full") != document):
            raise SystemExit(f"{kind}: unexpected answer to request {number}: {body[:300]!r}")

    return check


async def main(args: argparse.Namespace) -> list[Result]:
    async with scratch_database() as scratch:
        lifecycle = TenantLifecycle(scratch.db, scratch.settings)
        created = await lifecycle.create(
            SLUG, name="Bench page", admin_email=f"admin@{SLUG}.example", admin_password=PASSWORD
        )
        tenant = await lifecycle.get(SLUG)
        log(f"seeding {args.customers} customers")
        await seed_tenant(scratch.db, scratch.settings, tenant, args.customers)
        await analyse(scratch.db, tenant)
        async with tenant_session(scratch.db, tenant) as session:
            customer_id, loans = (await session.execute(MOST_LOANS)).one()
        signed_in = await sign_in(scratch.db, tenant, created.admin_email, PASSWORD, address="127.0.0.1")
        # The app serves with production settings, whose cookies are Secure and __Host- named.
        served = dataclasses.replace(scratch.settings, secure_cookies=True)
        cookie = f"{session_cookie_name(served)}={signed_in.cookie_value}"
        path = f"/t/{SLUG}/customers/{customer_id}?tab=loans"
        requests = {
            "full": request_bytes("GET", path, {"Cookie": cookie}),
            "partial": request_bytes(
                "GET", path, {"Cookie": cookie, "HX-Request": "true", "HX-Target": "customer-tabs"}
            ),
            "floor": request_bytes("GET", f"/customer/{customer_id}", {}),
        }
        servers: list[Server] = []
        try:
            servers = [app_server(scratch), floor_server(scratch, tenant.schema)]
            serving = {"full": servers[0], "partial": servers[0], "floor": servers[1]}
            loads: dict[int, dict[str, Load]] = {}
            for concurrency in (1, 8):
                merged = {kind: Load() for kind in requests}
                for round_number in range(args.rounds):
                    kinds = list(requests) if round_number % 2 == 0 else list(reversed(requests))
                    for kind in kinds:
                        load = await run_load(
                            serving[kind],
                            lambda _n, r=requests[kind]: r,
                            check_for(kind, str(customer_id)),
                            concurrency,
                            args.requests * (2 if concurrency > 1 else 1) // args.rounds,
                            args.warmup,
                        )
                        merged[kind].seconds += load.seconds
                        merged[kind].wall += load.wall
                        merged[kind].cpu += load.cpu
                        log(
                            f"c{concurrency} {kind}: p50 {load.p(50):.1f} ms, p99 {load.p(99):.1f} ms, "
                            f"{load.throughput:.0f} req/s, {load.cpu_ms_per_request:.1f} ms CPU/request "
                            f"(load average {load_average()})"
                        )
                loads[concurrency] = merged
        finally:
            for server in servers:
                server.stop()
    return results(args, loads, loads_of=int(loans))


def results(args: argparse.Namespace, loads: dict[int, dict[str, Load]], loads_of: int) -> list[Result]:
    what = {
        "full": "GET of the customer page on its loans tab, signed in (web session cookie): layout, "
        "profile, alerts, loans with arrears, collateral",
        "partial": "the same URL as htmx asks for it (HX-Request, HX-Target: customer-tabs): the tabs only",
        "floor": "bench/floor_server.py: the customer, loans with next instalments, warnings and risk cases "
        "as JSON from one SQL, as the schema owner, no session",
    }
    out: list[Result] = []
    for concurrency, by_kind in loads.items():
        floor = by_kind["floor"]
        for kind, load in by_kind.items():
            result = load.result(
                f"page.customer.{kind}.c{concurrency}@{args.customers}",
                f"{what[kind]}; the customer with the most loans ({loads_of}) of a tenant of "
                f"{args.customers}; {concurrency} client(s), {len(load.seconds)} requests in "
                f"{args.rounds} rounds; server CPU {load.cpu_ms_per_request:.1f} ms per request; "
                f"throughput in requests/s; load average at the end {load_average()}",
            )
            if kind != "floor":
                result.reference = round(floor.p(50), 3)
                result.ratio = round(load.p(50) / floor.p(50), 3)
                result.notes += "; reference = floor p50 (ms), ratio = p50 / floor p50"
            if kind == "full":
                partial = by_kind["partial"]
                result.notes += f"; full page p50 / partial p50 = {load.p(50) / partial.p(50):.2f}"
            out.append(result)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--customers", type=int, default=20_000, help="customers in the tenant (default 20,000)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=300,
        help="measured requests per kind at 1 client; 2x at 8 (default 300)",
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per run (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the kinds (default 2)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    write_results(measured, arguments.results)
    print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
