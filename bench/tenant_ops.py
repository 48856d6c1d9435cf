"""Operations on many tenants: migrate --all behind by one revision, serially and with worker processes;
and one tenant's backup and restore.

    TENANTCRM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
      .venv/bin/python bench/tenant_ops.py --tenants 100 --customers 1000

Prints the results as JSON and merges them into bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from alembic import command
from common import RESULTS_PATH, Result, latency_result, scratch_database, write_results
from sqlalchemy import Connection, event, text

from tenantcrm.customers.service import CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_source
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.backup import backup, restore
from tenantcrm.tenancy.migrate_all import migrate_all
from tenantcrm.tenancy.provisioning import TenantLifecycle
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _downgrade(connection: Connection, schema: str) -> None:
    config = migrations._config("tenant")
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.downgrade(config, "-1")


async def put_behind(lifecycle: TenantLifecycle, tenants: list[Tenant]) -> None:
    """Every tenant one revision back, so the next migrate --all really migrates each."""
    for tenant in tenants:
        async with lifecycle.db.admin_engine.begin() as conn:
            await conn.run_sync(_downgrade, tenant.schema)


async def timed_migrate_all(lifecycle: TenantLifecycle, tenants: list[Tenant], concurrency: int) -> float:
    await put_behind(lifecycle, tenants)
    start = perf_counter()
    outcomes = await migrate_all(lifecycle, concurrency)
    wall = perf_counter() - start
    statuses = {o.status for o in outcomes}
    assert statuses == {"migrated"}, f"expected every tenant migrated, got {statuses}"
    return wall


def _captured_upgrade(connection: Connection, schema: str) -> list[tuple[str, object]]:
    """Alembic to head in `schema`, keeping every statement it sends with its parameters."""
    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", keep)
    try:
        migrations._upgrade(connection, "tenant", schema, "head")
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    return statements


def _renamed(parameters: object, old: str, new: str) -> object:
    """DBAPI parameters with the template schema's name (set_config's argument) replaced."""
    if parameters is None:
        return ()
    return _renamed_value(parameters, old, new)


def _renamed_value(value: object, old: str, new: str) -> object:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, (list, tuple)):
        return type(value)(_renamed_value(v, old, new) for v in value)
    return value


async def provisioning_strategies(lifecycle: TenantLifecycle, count: int) -> tuple[list[float], list[float]]:
    """Schema + DDL to head per new tenant: Alembic each time, or replaying the statements Alembic
    sent once (search_path set, schema name substituted), each in one transaction."""
    engine = lifecycle.db.admin_engine
    template = f"t_{secrets.token_hex(8)}"
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{template}"'))
        recorded = await conn.run_sync(_captured_upgrade, template)
    alembic_seconds, replay_seconds = [], []
    for _ in range(count):
        schema = f"t_{secrets.token_hex(8)}"
        start = perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await migrations.upgrade_tenant(conn, schema)
        alembic_seconds.append(perf_counter() - start)

        replayed = f"t_{secrets.token_hex(8)}"
        start = perf_counter()
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{replayed}"'))
            for statement, parameters in recorded:
                await conn.exec_driver_sql(
                    statement.replace(template, replayed), _renamed(parameters, template, replayed)
                )
        replay_seconds.append(perf_counter() - start)
        async with engine.connect() as conn:
            same = await conn.scalar(
                text(
                    "SELECT (SELECT count(*) FROM information_schema.columns WHERE table_schema = :a)"
                    " = (SELECT count(*) FROM information_schema.columns WHERE table_schema = :b)"
                ),
                {"a": schema, "b": replayed},
            )
            assert same, "the replayed schema differs from Alembic's"
            version = await migrations.tenant_version(conn, replayed)
            assert version == migrations.head("tenant")
    return alembic_seconds, replay_seconds


async def seed_customers(lifecycle: TenantLifecycle, tenant: Tenant, admin_email: str, count: int) -> None:
    from tenantcrm.auth.service import find_user_by_email, principal_for_user

    ring = master_key_ring(lifecycle.settings)
    async with tenant_session(lifecycle.db, tenant) as session:
        user = await find_user_by_email(session, admin_email)
        assert user is not None
        principal = await principal_for_user(session, tenant, user.id)
        service = CustomerService(session, principal, cipher_source(lifecycle.db, ring, tenant))
        for number in range(count):
            await service.create_customer(
                {"name": f"客户{number}", "phone": f"139{number:08d}", "address": f"上海市{number}号"}
            )


async def main(args: argparse.Namespace) -> list[Result]:
    n = args.tenants
    async with scratch_database() as scratch:
        lifecycle = TenantLifecycle(scratch.db, scratch.settings)
        log(f"provisioning {n} tenants")
        tenants = []
        for _ in range(n):
            slug = f"ops-{secrets.token_hex(4)}"
            await lifecycle.create(slug, name="Bench", admin_email=f"admin@{slug}.example")
            tenants.append(await lifecycle.get(slug))

        log("migrate --all, one behind, serially")
        serial = await timed_migrate_all(lifecycle, tenants, 1)
        log(f"{serial:.1f} s; with {args.concurrency} worker processes")
        parallel = await timed_migrate_all(lifecycle, tenants, args.concurrency)
        log(f"{parallel:.1f} s")

        log(f"provisioning strategies, {args.strategy_tenants} schemas each")
        alembic_seconds, replay_seconds = await provisioning_strategies(lifecycle, args.strategy_tenants)

        source = tenants[0]
        log(f"seeding {args.customers} customers for backup and restore")
        await seed_customers(lifecycle, source, f"admin@{source.slug}.example", args.customers)
        with tempfile.TemporaryDirectory(prefix="tenantcrm-bench-backup-") as folder:
            file = Path(folder) / "tenant.zip"
            start = perf_counter()
            written = await backup(lifecycle, source.slug, file)
            backup_seconds = perf_counter() - start
            start = perf_counter()
            restored = await restore(lifecycle, file, f"ops-copy-{secrets.token_hex(3)}")
            restore_seconds = perf_counter() - start
        assert restored.rows == written.rows

    alembic_p50 = sorted(alembic_seconds)[len(alembic_seconds) // 2]
    results = [
        latency_result(
            f"provision.ddl_alembic@{n}",
            alembic_seconds,
            len(alembic_seconds) / sum(alembic_seconds),
            notes="CREATE SCHEMA + Alembic to head in one transaction per new schema, with"
            f" {n} tenants present; throughput in schemas/s",
        ),
        latency_result(
            f"provision.ddl_replay@{n}",
            replay_seconds,
            len(replay_seconds) / sum(replay_seconds),
            reference=round(alembic_p50 * 1000, 3),
            ratio=round(sorted(replay_seconds)[len(replay_seconds) // 2] / alembic_p50, 3),
            notes="CREATE SCHEMA + replaying the statements Alembic sent once (schema name substituted),"
            " one transaction; reference = Alembic p50 (ms), ratio = replay p50 / Alembic p50",
        ),
        latency_result(
            f"migrate.all_behind.serial@{n}",
            [serial / n],
            n / serial,
            notes=f"migrate --all, every tenant one revision behind, --concurrency 1: {serial:.1f} s in all;"
            " p50/p99 = mean per tenant; throughput in tenants/s",
        ),
        latency_result(
            f"migrate.all_behind.c{args.concurrency}@{n}",
            [parallel / n],
            n / parallel,
            reference=round(n / serial, 1),
            ratio=round(serial / parallel, 3),
            notes=f"the same with --concurrency {args.concurrency} (worker processes, their start included):"
            f" {parallel:.1f} s in all; reference = serial tenants/s, ratio = speed-up",
        ),
        latency_result(
            f"backup.tenant@{args.customers}",
            [backup_seconds],
            written.rows / backup_seconds,
            notes=f"tenants backup of one tenant with {args.customers} customers: {written.rows} rows in"
            f" {written.tables} tables, {written.bytes} bytes; throughput in rows/s",
        ),
        latency_result(
            f"restore.tenant@{args.customers}",
            [restore_seconds],
            restored.rows / restore_seconds,
            notes="tenants restore --as of that file (migrate to the backup's revision, COPY, re-encrypt PII,"
            " migrate to head) in one transaction; throughput in rows/s",
        ),
    ]
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=100, help="tenants to provision (default 100)")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--customers", type=int, default=1000, help="customers in the backed-up tenant")
    parser.add_argument("--strategy-tenants", type=int, default=30, help="schemas per provisioning strategy")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    results = asyncio.run(main(args))
    write_results(results, args.results)
    import json
    from dataclasses import asdict

    print(json.dumps([asdict(r) for r in results], indent=2, ensure_ascii=False))
