"""Sign-in throttling per account and per address, shared by all app processes.

Every attempt is counted *before* the password is checked, so parallel attempts cannot slip
past the limit; a successful sign-in then gives its attempt back.
"""

from __future__ import annotations

import hashlib
import ipaddress

from sqlalchemy import text

from tenantcrm.database import Database
from tenantcrm.tenancy.session import unscoped_platform_session

ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 30
WINDOW_MINUTES = 15
BLOCK_MINUTES = 15


def account_key(tenant_id: str, email: str) -> str:
    # Hashed: the platform schema holds no tenant user's e-mail address.
    return "acct:" + hashlib.sha256(f"{tenant_id}|{email}".encode()).hexdigest()


def address_key(address: str) -> str:
    """One key per IPv4 address, and per /64 for IPv6 (one host usually holds a whole /64)."""
    try:
        parsed = ipaddress.ip_address(address)
        if parsed.version == 6:
            address = str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    except ValueError:
        pass
    return "addr:" + hashlib.sha256(address.encode()).hexdigest()


_COUNT_ATTEMPT = text(
    """
    INSERT INTO platform.login_throttle AS t (key, failures, window_started_at)
    VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(mins => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(mins => :window)
                                 THEN now() ELSE t.window_started_at END,
        blocked_until = CASE WHEN t.blocked_until > now() THEN t.blocked_until END
    RETURNING failures, blocked_until > now() AS blocked
    """
)
_BLOCK = text(
    "UPDATE platform.login_throttle SET blocked_until = now() + make_interval(mins => :block)"
    " WHERE key = :key"
)
_GIVE_BACK = text("UPDATE platform.login_throttle SET failures = greatest(failures - 1, 0) WHERE key = :key")
_CLEAR = text("DELETE FROM platform.login_throttle WHERE key = :key")


async def reserve_attempt(db: Database, limits: dict[str, int]) -> bool:
    """Count one attempt against each key; False (and the key blocked) when over its limit."""
    allowed = True
    async with unscoped_platform_session(db) as session:
        for key, limit in sorted(limits.items()):  # a fixed order: no deadlock between keys
            row = (await session.execute(_COUNT_ATTEMPT, {"key": key, "window": WINDOW_MINUTES})).one()
            if row.blocked or row.failures > limit:
                allowed = False
                if not row.blocked:
                    await session.execute(_BLOCK, {"key": key, "block": BLOCK_MINUTES})
    return allowed


async def attempt_succeeded(db: Database, account: str, address: str) -> None:
    """The account starts afresh; the address gets its attempt back."""
    async with unscoped_platform_session(db) as session:
        await session.execute(_CLEAR, {"key": account})
        await session.execute(_GIVE_BACK, {"key": address})


async def is_blocked(db: Database, key: str) -> bool:
    async with unscoped_platform_session(db) as session:
        return bool(
            await session.scalar(
                text("SELECT blocked_until > now() FROM platform.login_throttle WHERE key = :key"),
                {"key": key},
            )
        )


async def clear(db: Database, key: str) -> None:
    async with unscoped_platform_session(db) as session:
        await session.execute(_CLEAR, {"key": key})
