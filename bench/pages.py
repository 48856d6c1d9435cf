"""Server time of every page of the demo tenant (issue 9: none slower than 200 ms).

Seeds the demo tenant (`tenantcrm demo`'s data: 240 customers, their loans, contacts, complaints,
cases) in a scratch database, signs in as the demo admin (record scope all, every permission: the
heaviest pages) and requests each page in-process through the ASGI app, so the time is the app's
and the database's, not a network's. Per page: p50 and p99 over --runs requests after --warmup.
The reference is `/healthz` measured in the same run (the app's floor: routing, middleware,
logging, no query); ratio = page p50 / healthz p50. Target: p50 < 200 ms per page.

    TENANTCRM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/pages.py --runs 20

Prints JSON and merges the entries (`page.<name>`) into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter

import httpx
from common import RESULTS_PATH, Result, latency_result, scratch_database, write_results
from sqlalchemy import text

from tenantcrm.app import create_app
from tenantcrm.demo import DEMO_ADMIN, DEMO_PASSWORD, DEMO_SLUG, ensure_demo_tenant
from tenantcrm.tenancy.registry import find_tenant_by_slug
from tenantcrm.tenancy.session import tenant_session

TARGET_MS = 200.0
HTMX = {"HX-Request": "true"}
CSRF = re.compile(r'<input[^>]*name="_csrf_token"[^>]*value="([^"]+)"')


async def _ids(db) -> dict[str, str]:
    """One of each kind of record the pages show, the richest where it matters."""
    tenant = await find_tenant_by_slug(db, DEMO_SLUG)
    assert tenant is not None
    queries = {
        # The customer with the most loans and contacts: the heaviest customer page.
        "customer": "SELECT c.id FROM customers c ORDER BY"
        " (SELECT count(*) FROM loans l WHERE l.customer_id = c.id)"
        " + (SELECT count(*) FROM interactions i WHERE i.customer_id = c.id) DESC, c.id LIMIT 1",
        # The loan with the longest schedule: the heaviest loan page.
        "loan": "SELECT l.id FROM loans l ORDER BY"
        " (SELECT count(*) FROM installments i WHERE i.loan_id = l.id) DESC, l.id LIMIT 1",
        "complaint": "SELECT id FROM complaints ORDER BY id LIMIT 1",
        "case": "SELECT id FROM risk_cases ORDER BY id LIMIT 1",
    }
    ids = {}
    async with tenant_session(db, tenant) as session:
        for key, sql in queries.items():
            value = await session.scalar(text(sql))
            assert value is not None, f"the demo tenant has no {key}"
            ids[key] = str(value)
    return ids


def _pages(ids: dict[str, str]) -> dict[str, tuple[str, dict[str, str]]]:
    t = f"/t/{DEMO_SLUG}"
    customer, loan = f"{t}/customers/{ids['customer']}", f"{t}/loans/{ids['loan']}"
    pages: dict[str, tuple[str, dict[str, str]]] = {
        "dashboard": (f"{t}/dashboard", {}),
        "dashboard.json": (f"{t}/dashboard.json", {}),
        "my_day": (f"{t}/my-day", {}),
        "customers": (f"{t}/customers", {}),
        "customers.search": (f"{t}/customers?search=%E6%9D%8E", {}),
        "customers.partial": (f"{t}/customers", HTMX),
        "customer.new": (f"{t}/customers/new", {}),
        "customer": (customer, {}),
        "customer.edit": (f"{customer}/edit", {}),
        "loans": (f"{t}/loans", {}),
        "loan": (loan, {}),
        "loan.calculator": (f"{t}/loans/calculator", {}),
        "complaints": (f"{t}/complaints", {}),
        "complaint": (f"{t}/complaints/{ids['complaint']}", {}),
        "risk": (f"{t}/risk", {}),
        "risk.warnings": (f"{t}/risk/warnings", {}),
        "risk.case": (f"{t}/risk/cases/{ids['case']}", {}),
        "segments": (f"{t}/segments", {}),
        "segments.new": (f"{t}/segments/new", {}),
        "imports": (f"{t}/imports", {}),
        "developers": (f"{t}/developers", {}),
        "settings.users": (f"{t}/settings/users", {}),
        "settings.roles": (f"{t}/settings/roles", {}),
        "settings.audit": (f"{t}/settings/audit", {}),
        "settings.pii_access": (f"{t}/settings/pii-access", {}),
        "settings.retention": (f"{t}/settings/retention", {}),
        "settings.general": (f"{t}/settings/general", {}),
        "settings.classification": (f"{t}/settings/classification", {}),
        "settings.warnings": (f"{t}/settings/warnings", {}),
    }
    for tab in ("financials", "collateral", "loans", "timeline", "complaints"):
        pages[f"customer.tab.{tab}"] = (f"{customer}?tab={tab}", HTMX)
    return pages


async def _timed(request: Callable[[], Awaitable[object]], runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await request()
    samples = []
    for _ in range(runs):
        start = perf_counter()
        await request()
        samples.append(perf_counter() - start)
    return samples


async def run(runs: int, warmup: int) -> list[Result]:
    async with scratch_database() as scratch:
        await ensure_demo_tenant(scratch.db, scratch.settings)
        ids = await _ids(scratch.db)
        app = create_app(scratch.settings, scratch.database_url, database=scratch.db)
        # Served in this event loop (the engines' loop), as the tests do: no lifespan, so set its state.
        app.state.db = scratch.db
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login = await client.get(f"/t/{DEMO_SLUG}/login")
            token = CSRF.search(login.text)
            assert token is not None, "no CSRF token on the sign-in page"
            signed = await client.post(
                f"/t/{DEMO_SLUG}/login",
                data={"email": DEMO_ADMIN, "password": DEMO_PASSWORD, "_csrf_token": token.group(1)},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.status_code

            async def get(path: str, headers: dict[str, str]) -> None:
                response = await client.get(path, headers=headers, follow_redirects=False)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path}: {response.status_code}")

            floor = await _timed(lambda: get("/healthz", {}), runs * 2, warmup)
            floor_p50 = latency_result("page.reference.healthz", floor, None).p50_ms
            results = [latency_result("page.reference.healthz", floor, len(floor) / sum(floor))]
            for name, (path, headers) in _pages(ids).items():
                samples = await _timed(lambda p=path, h=headers: get(p, h), runs, warmup)
                result = latency_result(
                    f"page.{name}",
                    samples,
                    len(samples) / sum(samples),
                    reference=floor_p50,
                    target=f"p50 < {TARGET_MS:.0f} ms",
                )
                result.ratio = round(result.p50_ms / floor_p50, 1) if floor_p50 else None
                result.met = result.p50_ms < TARGET_MS
                result.notes = f"GET {path.replace(ids['customer'], '<customer>')}" + (
                    " (htmx partial)" if headers else ""
                )
                results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--results", default=str(RESULTS_PATH))
    args = parser.parse_args()
    results = asyncio.run(run(args.runs, args.warmup))
    write_results(results, Path(args.results))
    json.dump([vars(r) for r in results], sys.stdout, indent=2, ensure_ascii=False)
    print()
    slow = [r.name for r in results if r.met is False]
    print(f"pages over {TARGET_MS:.0f} ms p50: {slow or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
