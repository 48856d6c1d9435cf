"""Shared by the benches: a scratch database with its roles, percentiles, and results.json.

The server is TENANTCRM_BENCH_DATABASE_URL (an admin URL, e.g.
postgresql://postgres@127.0.0.1:5432/postgres) or, when unset, an embedded pgserver in a
temporary folder. Each run creates its own database and app role and drops both afterwards,
with every tenant role granted to that app role (roles are cluster-wide). A bench that seeds for
minutes may instead keep a named database (kept_database) to measure it again later.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tenantcrm.database import Database, async_url
from tenantcrm.settings import REPO_ROOT, Settings
from tenantcrm.tenancy.provisioning import bootstrap
from tenantcrm.tenancy.scratch import drop_database
from tenantcrm.tenancy.scratch import scratch_database as tenancy_scratch

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results.json"


@dataclass(frozen=True)
class Scratch:
    """A bootstrapped database of this run alone."""

    server_url: str
    database_url: str
    settings: Settings
    db: Database


def server_url() -> str:
    """The admin URL of the server to bench on: the given one, or a fresh embedded server."""
    given = os.environ.get("TENANTCRM_BENCH_DATABASE_URL")
    if given:
        return given
    from tenantcrm.embedded import start_embedded_server

    folder = tempfile.mkdtemp(prefix="tenantcrm-bench-pg-")
    # pgserver deletes the cluster at exit; registered first, this runs after it and
    # removes the then-empty folder.
    atexit.register(_remove_empty_folder, folder)
    return start_embedded_server(Path(folder), delete_on_exit=True)


def _remove_empty_folder(folder: str) -> None:
    with suppress(OSError):
        os.rmdir(folder)


def _settings(database_url: str, app_role: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        app_role=app_role,
        data_dir=data_dir,
        environment="test",
        secret_key="bench-secret-key-" + "x" * 32,
        web_dir=REPO_ROOT / "web",
    )


@asynccontextmanager
async def scratch_database() -> AsyncIterator[Scratch]:
    """Create a database and app role, bootstrap them, yield; drop everything afterwards."""
    server = server_url()
    async with tenancy_scratch(server, prefix="tcrm_bench") as scratch:
        with tempfile.TemporaryDirectory(prefix="tenantcrm-bench-data-") as data_dir:
            settings = _settings(scratch.url, scratch.app_role, Path(data_dir))
            db = Database.connect(settings, scratch.url)
            try:
                await bootstrap(db, settings)
                yield Scratch(server, scratch.url, settings, db)
            finally:
                await db.dispose()


KEPT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _kept(name: str) -> tuple[str, str, Path]:
    """App role and data folder (the development master key of its tenants) of a kept database."""
    if not KEPT_NAME.fullmatch(name):
        raise SystemExit(f"a kept database name is 1-40 of a-z, 0-9 and _, starting with a letter: {name!r}")
    return name, f"{name}_app", Path(tempfile.gettempdir()) / f"tenantcrm-bench-{name}"


@asynccontextmanager
async def kept_database(name: str) -> AsyncIterator[tuple[Scratch, str | None]]:
    """The database `name` on the bench server, created and bootstrapped when missing, and left in
    place afterwards; also yields its comment, where a bench records what it seeded (mark_kept):
    None when the database was just created, "" when it holds no record. Drop it with
    drop_kept_database. Only on a given server: an embedded one is deleted at exit."""
    database, app_role, data_dir = _kept(name)
    if not os.environ.get("TENANTCRM_BENCH_DATABASE_URL"):
        raise SystemExit("a kept database needs TENANTCRM_BENCH_DATABASE_URL (an admin URL)")
    server = server_url()
    engine = create_async_engine(async_url(server), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(text("SELECT oid FROM pg_database WHERE datname = :n"), {"n": database})
            if found is None:
                await conn.execute(text(f'CREATE DATABASE "{database}"'))
                comment = None
            else:
                comment = await conn.scalar(
                    text("SELECT coalesce(shobj_description(:oid, 'pg_database'), '')"), {"oid": found}
                )
    finally:
        await engine.dispose()
    url = make_url(server).set(database=database).render_as_string(hide_password=False)
    data_dir.mkdir(exist_ok=True)
    settings = _settings(url, app_role, data_dir)
    db = Database.connect(settings, url)
    try:
        await bootstrap(db, settings)
        yield Scratch(server, url, settings, db), comment
    finally:
        await db.dispose()


async def mark_kept(scratch: Scratch, comment: str) -> None:
    """Record in the kept database's comment what it holds (set once its seed is complete)."""
    async with scratch.db.admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        database = make_url(scratch.database_url).database
        await conn.execute(text(f'COMMENT ON DATABASE "{database}" IS ' + _literal(comment)))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def drop_kept_database(name: str) -> None:
    """Drop a kept database with its app role and tenant roles, and its data folder."""
    database, app_role, data_dir = _kept(name)
    engine = create_async_engine(async_url(server_url()), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await drop_database(conn, database, app_role)
    finally:
        await engine.dispose()
    for path in data_dir.glob("*"):
        path.unlink()
    with suppress(OSError):
        data_dir.rmdir()


def add_kept_database_arguments(parser: argparse.ArgumentParser) -> None:
    """--keep-database NAME and --drop-database NAME, for a bench whose seed takes minutes."""
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="seed into database NAME and keep it; a later run with the same NAME and --customers "
        "reuses it (migrated to head) instead of seeding again",
    )
    parser.add_argument(
        "--drop-database", metavar="NAME", help="drop a kept database and its roles, then exit"
    )


@asynccontextmanager
async def kept_or_scratch_database(keep: str | None) -> AsyncIterator[tuple[Scratch, str | None]]:
    """The kept database named `keep` (--keep-database), or a scratch one (comment None: nothing
    seeded yet)."""
    if keep:
        async with kept_database(keep) as kept:
            yield kept
    else:
        async with scratch_database() as scratch:
            yield scratch, None


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Result:
    """One line of results.json. Times in milliseconds, throughput per second."""

    name: str
    p50_ms: float | None
    p99_ms: float | None
    throughput: float | None
    reference: float | None
    ratio: float | None
    target: str | None
    met: bool | None
    notes: str


def latency_result(name: str, seconds: Sequence[float], throughput: float | None, **fields) -> Result:
    """A Result whose p50/p99 come from per-item durations in seconds."""
    return Result(
        name=name,
        p50_ms=round(percentile(seconds, 50) * 1000, 3),
        p99_ms=round(percentile(seconds, 99) * 1000, 3),
        throughput=None if throughput is None else round(throughput, 1),
        **{"reference": None, "ratio": None, "target": None, "met": None, "notes": "", **fields},
    )


def write_results(results: Sequence[Result], path: Path = RESULTS_PATH) -> None:
    """Merge into results.json: an entry replaces the one of the same name, others stay."""
    existing = json.loads(path.read_text()) if path.exists() else []
    by_name = {entry["name"]: entry for entry in existing}
    for result in results:
        by_name[result.name] = asdict(result)
    path.write_text(json.dumps(list(by_name.values()), indent=2, ensure_ascii=False) + "\n")
