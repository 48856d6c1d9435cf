"""Failed sign-in throttling per account and per address, shared by all app processes."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, func, select, text

from tenantcrm.database import Database
from tenantcrm.tenancy.models import LoginThrottleRow
from tenantcrm.tenancy.session import unscoped_platform_session

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 30
WINDOW_MINUTES = 15
BLOCK_MINUTES = 15


def account_key(tenant_id: str, email: str) -> str:
    # Hashed: the platform schema holds no tenant user's e-mail address.
    return "acct:" + hashlib.sha256(f"{tenant_id}|{email}".encode()).hexdigest()


def address_key(address: str) -> str:
    return "addr:" + hashlib.sha256(address.encode()).hexdigest()


async def blocked_until(db: Database, keys: list[str]) -> datetime | None:
    async with unscoped_platform_session(db) as session:
        return await session.scalar(
            select(func.max(LoginThrottleRow.blocked_until)).where(
                LoginThrottleRow.key.in_(keys), LoginThrottleRow.blocked_until > func.now()
            )
        )


_RECORD_FAILURE = text(
    """
    INSERT INTO platform.login_throttle AS t (key, failures, window_started_at)
    VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(mins => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(mins => :window)
                                 THEN now() ELSE t.window_started_at END
    RETURNING failures
    """
)
_BLOCK = text(
    "UPDATE platform.login_throttle SET blocked_until = now() + make_interval(mins => :block)"
    " WHERE key = :key"
)


async def record_failure(db: Database, limits: dict[str, int]) -> None:
    """Count one failure against each key; block a key that reaches its limit."""
    async with unscoped_platform_session(db) as session:
        for key, limit in sorted(limits.items()):
            failures = await session.scalar(_RECORD_FAILURE, {"key": key, "window": WINDOW_MINUTES})
            if failures is not None and failures >= limit:
                await session.execute(_BLOCK, {"key": key, "block": BLOCK_MINUTES})


async def clear(db: Database, key: str) -> None:
    async with unscoped_platform_session(db) as session:
        await session.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key == key))
