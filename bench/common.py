"""Shared by the benches: a scratch database with its roles, percentiles, and results.json.

The server is TENANTCRM_BENCH_DATABASE_URL (an admin URL, e.g.
postgresql://postgres@127.0.0.1:5432/postgres) or, when unset, an embedded pgserver in a
temporary folder. Each run creates its own database and app role and drops both afterwards,
with every tenant role granted to that app role (roles are cluster-wide).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from tenantcrm.database import Database
from tenantcrm.settings import REPO_ROOT, Settings
from tenantcrm.tenancy.provisioning import bootstrap
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


@asynccontextmanager
async def scratch_database() -> AsyncIterator[Scratch]:
    """Create a database and app role, bootstrap them, yield; drop everything afterwards."""
    server = server_url()
    async with tenancy_scratch(server, prefix="tcrm_bench") as scratch:
        with tempfile.TemporaryDirectory(prefix="tenantcrm-bench-data-") as data_dir:
            settings = Settings(
                database_url=scratch.url,
                app_role=scratch.app_role,
                data_dir=Path(data_dir),
                environment="test",
                secret_key="bench-secret-key-" + "x" * 32,
                web_dir=REPO_ROOT / "web",
            )
            db = Database.connect(settings, scratch.url)
            try:
                await bootstrap(db, settings)
                yield Scratch(server, scratch.url, settings, db)
            finally:
                await db.dispose()


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
