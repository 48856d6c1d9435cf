"""GET /readyz: the database answers, the platform schema and no active tenant is behind its migrations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from alembic.script import ScriptDirectory
from litestar import MediaType, Request, Response, get
from sqlalchemy import bindparam, text

from tenantcrm.database import Database
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.models import PLATFORM_SCHEMA
from tenantcrm.tenancy.tenant import ACTIVE

BEHIND_REFRESH_NS = 30_000_000_000
CHECK_TIMEOUT_SECONDS = 3.0

_PLATFORM_VERSION = text(f"SELECT version_num FROM {PLATFORM_SCHEMA}.alembic_version")  # noqa: S608
_TENANTS_BEHIND = text(
    f"SELECT count(*) FROM {PLATFORM_SCHEMA}.tenants"  # noqa: S608
    " WHERE status = :active AND (schema_version IS NULL OR schema_version IN :older)"
).bindparams(bindparam("older", expanding=True))


@cache
def older_revisions(env: str) -> tuple[str, ...]:
    """Revisions of `env` before its head. A version this code does not know is newer (another
    release migrated it during a rolling deploy): that is not "behind", and must not take every
    process of the older release out of service."""
    script = ScriptDirectory(str(migrations.MIGRATIONS_DIR / env))
    head = migrations.head(env)
    return tuple(revision.revision for revision in script.walk_revisions() if revision.revision != head)


@dataclass
class Readiness:
    """The probe's state for one app: the count of tenants behind, refreshed at most every 30 s
    (counting reads the registry; a probe every few seconds must stay cheap)."""

    clock: Callable[[], int] = time.monotonic_ns
    _behind: int | None = None
    _counted_at: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def check(self, db: Database) -> str | None:
        """None when ready, else the reason (no data: a fixed phrase and counts)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                # The app role cannot read Alembic's table in the platform schema; the admin can.
                async with db.admin_engine.connect() as connection:
                    platform_version = await connection.scalar(_PLATFORM_VERSION)
                behind = await self._tenants_behind(db)
        except Exception as exc:  # any failure to answer means not ready
            return f"database unavailable ({type(exc).__name__})"
        if platform_version is None or platform_version in older_revisions("platform"):
            return "platform schema is behind the newest migration"
        if behind:
            return f"{behind} active tenant(s) behind the newest tenant migration"
        return None

    async def _tenants_behind(self, db: Database) -> int:
        async with self._lock:
            if self._behind is None or self.clock() - self._counted_at >= BEHIND_REFRESH_NS:
                async with db.app_engine.connect() as connection:
                    self._behind = int(
                        await connection.scalar(
                            _TENANTS_BEHIND, {"active": ACTIVE, "older": older_revisions("tenant")}
                        )
                        or 0
                    )
                self._counted_at = self.clock()
            return self._behind


@get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> Response:
    readiness: Readiness = request.app.state.readiness
    reason = await readiness.check(request.app.state.db)
    if reason is not None:
        return Response(
            {"status": "not ready", "reason": reason},
            status_code=503,
            media_type=MediaType.JSON,
            headers={"Cache-Control": "no-store"},
        )
    return Response({"status": "ready"}, media_type=MediaType.JSON, headers={"Cache-Control": "no-store"})
