"""Tenant keys in platform.tenant_keys: created by the admin engine, read and cached by the app role.

Index keys are never rotated: every key version carries version 1's index key, so blind
indexes (exact-match search, duplicate detection) keep working across data-key rotation
without recomputing them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantcrm.database import Database
from tenantcrm.pii.cipher import KEY_BYTES, TenantCipher
from tenantcrm.pii.keys import KeyProvider
from tenantcrm.tenancy.session import unscoped_platform_session
from tenantcrm.tenancy.tenant import Tenant

CACHE_SECONDS = 30.0

_KEY_ROWS = text(
    "SELECT version, wrapped_data_key, wrapped_index_key, master_key_id"
    " FROM platform.tenant_keys WHERE tenant_id = :tenant_id ORDER BY version"
)
_INSERT_KEY = text(
    "INSERT INTO platform.tenant_keys"
    " (tenant_id, version, wrapped_data_key, wrapped_index_key, master_key_id)"
    " VALUES (:tenant_id, :version, :data_key, :index_key, :master_key_id)"
    " ON CONFLICT (tenant_id, version) DO NOTHING"
)

_cache: dict[str, tuple[float, TenantCipher]] = {}


class TenantKeysMissing(LookupError):
    """The tenant has no key row (provisioning did not finish); the message names no key."""


async def create_tenant_keys(conn: AsyncConnection, ring: KeyProvider, tenant_id: str) -> bool:
    """Version 1 of the tenant's data and index keys unless it has keys already; True if created."""
    if await conn.scalar(
        text("SELECT 1 FROM platform.tenant_keys WHERE tenant_id = :t LIMIT 1"), {"t": tenant_id}
    ):
        return False
    result = await conn.execute(
        _INSERT_KEY,
        {
            "tenant_id": tenant_id,
            "version": 1,
            "data_key": ring.wrap(os.urandom(KEY_BYTES), tenant_id, 1),
            "index_key": ring.wrap(os.urandom(KEY_BYTES), tenant_id, 1),
            "master_key_id": ring.key_id,
        },
    )
    return result.rowcount == 1


async def add_key_version(conn: AsyncConnection, ring: KeyProvider, tenant_id: str) -> int:
    """A new data-key version (admin connection; the caller holds the rotation lock)."""
    rows = (await conn.execute(_KEY_ROWS, {"tenant_id": tenant_id})).all()
    if not rows:
        raise TenantKeysMissing("the tenant has no data keys; rerun its provisioning")
    first, newest = rows[0], rows[-1].version + 1
    index_key = ring.unwrap(first.wrapped_index_key, first.master_key_id, tenant_id, first.version)
    await conn.execute(
        _INSERT_KEY,
        {
            "tenant_id": tenant_id,
            "version": newest,
            "data_key": ring.wrap(os.urandom(KEY_BYTES), tenant_id, newest),
            "index_key": ring.wrap(index_key, tenant_id, newest),
            "master_key_id": ring.key_id,
        },
    )
    forget(tenant_id)
    return newest


async def cipher_for(
    db: Database, ring: KeyProvider, tenant: Tenant, need_version: int | None = None
) -> TenantCipher:
    """The tenant's cipher, cached for CACHE_SECONDS.

    Pass `need_version` (`version_of(blob)` of the field about to be decrypted) so that a
    cipher cached before another process rotated the tenant is reloaded instead of failing.
    """
    cached = _cache.get(tenant.id)
    if cached and cached[0] > time.monotonic():
        cipher = cached[1]
        if need_version is None or need_version in cipher.versions:
            return cipher
    async with unscoped_platform_session(db) as session:
        rows = (await session.execute(_KEY_ROWS, {"tenant_id": tenant.id})).all()
    if not rows:
        raise TenantKeysMissing(f"tenant {tenant.slug!r} has no data keys; rerun its provisioning")
    data_keys = {
        r.version: ring.unwrap(r.wrapped_data_key, r.master_key_id, tenant.id, r.version) for r in rows
    }
    first = rows[0]
    index_key = ring.unwrap(first.wrapped_index_key, first.master_key_id, tenant.id, first.version)
    cipher = TenantCipher.build(tenant.id, data_keys, max(data_keys), index_key)
    _cache[tenant.id] = (time.monotonic() + CACHE_SECONDS, cipher)
    return cipher


def forget(tenant_id: str) -> None:
    """Drop the cached cipher (after rotation, or when the tenant is deleted)."""
    _cache.pop(tenant_id, None)


def cipher_source(db: Database, ring: KeyProvider, tenant: Tenant):
    """What services are handed: the tenant's cipher on demand, refreshed for a newer version."""

    def source(need_version: int | None = None) -> Awaitable[TenantCipher]:
        return cipher_for(db, ring, tenant, need_version=need_version)

    return source
