"""What importing a customer sheet costs: rows/s through the whole import, against a plain COPY.

    .venv/bin/python bench/import_rows.py --rows 100000

Makes N synthetic people (valid resident IDs, unique phones) as .csv and .xlsx, and measures in
a scratch database, each in a tenant of its own:

- import.csv@N / import.xlsx@N: imports.service.run_import, the engine under the web pages and
  the CLI: read the sheet, validate every row (customers.inputs), encrypt and blind-index the PII,
  check duplicates in the file and against the tenant, stage in chunks of 2,000 with their
  checkpoints, then create every customer in one transaction. Throughput is rows/s over the
  whole run; p50/p99 are per staged chunk; ratio = throughput / the reference's.
- import.reference_copy@N: the floor: the same rows' clear columns COPYed straight into
  customers in one tenant transaction, without reading a file, validation, encryption,
  staging or duplicate checks.

Target: 2,000 rows/s with encryption and duplicate checks (issue 5). Prints JSON and merges the
entries into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import uuid
from dataclasses import asdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from time import perf_counter

from common import RESULTS_PATH, Result, latency_result, scratch_database, write_results
from openpyxl import Workbook
from sqlalchemy import text

from tenantcrm.imports.service import copy_rows, run_import
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

TARGET_ROWS_PER_SECOND = 2000
HEADERS = ("序号", "客户姓名", "身份证号", "联系电话", "住址", "月收入(元)", "信用评级")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
AREAS = ("110105", "310115", "420106", "510107", "330106", "440305")
CITIES = ("北京市朝阳区", "上海市浦东新区", "武汉市武昌区", "成都市武侯区", "杭州市西湖区", "深圳市南山区")
NAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗", "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


def person(n: int) -> list[object]:
    born = date(1960, 1, 1) + timedelta(days=n % 15000)
    body = f"{AREAS[n % len(AREAS)]}{born:%Y%m%d}{(n // 15000) % 1000:03d}"
    national_id = body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    surnames, given = NAMES
    name = surnames[n % len(surnames)] + given[(n // 20) % len(given)] + given[(n // 500) % len(given)]
    phone = f"1{3 + n % 7}{n:09d}"[:11]
    address = f"{CITIES[n % len(CITIES)]}{n % 300}路{n % 97}号"
    return [
        n + 1,
        name,
        national_id,
        phone,
        address,
        8000 + (n % 50) * 1000,
        ("AAA", "AA", "A", "BBB")[n % 4],
    ]


def as_csv(rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def as_xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("客户")
    sheet.append(list(HEADERS))
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def timed_import(db, settings, tenant: Tenant, name: str, content: bytes, rows: int) -> Result:
    chunk_ends: list[float] = []
    start = perf_counter()
    job = await run_import(
        db,
        cipher_source(db, master_key_ring(settings), tenant),
        tenant,
        None,
        name,
        content,
        progress=lambda _job: chunk_ends.append(perf_counter()),
    )
    seconds = perf_counter() - start
    if job.status != "done" or job.created_rows != rows:
        raise SystemExit(f"{name}: {job.status}, {job.created_rows} of {rows} rows created")
    chunks = [b - a for a, b in zip([start, *chunk_ends], chunk_ends, strict=False)]
    staging = chunk_ends[-1] - start
    return latency_result(
        f"import.{name.rsplit('.', 1)[1]}@{rows}",
        chunks,
        rows / seconds,
        target=f">= {TARGET_ROWS_PER_SECOND} rows/s",
        met=rows / seconds >= TARGET_ROWS_PER_SECOND,
        notes=f"{seconds:.1f} s in all: staging {staging:.1f} s, commit {seconds - staging:.1f} s;"
        f" {len(content) / 1e6:.1f} MB file; p50/p99 per chunk of 2,000 rows",
    )


async def reference_copy(db, tenant: Tenant, rows: list[list[object]]) -> Result:
    records = [
        {
            "id": uuid.uuid4(),
            "kind": "individual",
            "name": row[1],
            "monthly_income": Decimal(row[5]),
            "credit_grade": row[6],
            "source": "import",
        }
        for row in rows
    ]
    start = perf_counter()
    async with tenant_session(db, tenant) as session:
        await copy_rows(session, "customers", records)
        count = await session.scalar(text("SELECT count(*) FROM customers"))
    seconds = perf_counter() - start
    assert count == len(rows)
    return latency_result(
        f"import.reference_copy@{len(rows)}",
        [seconds],
        len(rows) / seconds,
        notes=f"{seconds:.1f} s: clear columns COPYed in one transaction, nothing validated or encrypted",
    )


async def main(args: argparse.Namespace) -> list[Result]:
    rows = [person(n) for n in range(args.rows)]
    csv_content, xlsx_content = as_csv(rows), as_xlsx(rows)
    async with scratch_database() as scratch:
        lifecycle = TenantLifecycle(scratch.db, scratch.settings)
        tenants = []
        for name in ("bench-csv", "bench-xlsx", "bench-reference"):
            await lifecycle.create(name, name=name, admin_email=f"admin@{name}.example")
            tenants.append(await lifecycle.get(name))
        reference = await reference_copy(scratch.db, tenants[2], rows)
        results = [
            await timed_import(scratch.db, scratch.settings, tenants[0], "bench.csv", csv_content, args.rows),
            await timed_import(
                scratch.db, scratch.settings, tenants[1], "bench.xlsx", xlsx_content, args.rows
            ),
        ]
    for result in results:
        result.reference = reference.throughput
        result.ratio = round(result.throughput / reference.throughput, 3) if reference.throughput else None
    return [*results, reference]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the sheet (default 100,000)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    measured = asyncio.run(main(arguments))
    write_results(measured, arguments.results)
    print(json.dumps([asdict(r) for r in measured], indent=2, ensure_ascii=False))
