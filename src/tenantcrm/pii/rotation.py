"""Key rotation: rewrap tenant keys under the current master key; re-encrypt a tenant's PII in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from tenantcrm.database import Database
from tenantcrm.pii.cipher import PiiDecryptionError, TenantCipher
from tenantcrm.pii.keys import KeyProvider, MasterKeyError
from tenantcrm.pii.store import TenantKeysMissing, add_key_version, cipher_for
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant

# The oldest key version among a row's encrypted fields: writers set it with
# LEAST(pii_key_version, current), so a row holding any field behind is rotated.
VERSION_COLUMN = "pii_key_version"


@dataclass(frozen=True)
class EncryptedTable:
    """A tenant table with encrypted columns; the column name is part of each field's associated data."""

    name: str
    columns: tuple[str, ...]


CUSTOMERS = EncryptedTable("customers", ("national_id_enc", "phone_enc", "email_enc", "address_enc"))
# Every tenant table holding encrypted fields (all with `id` and `pii_key_version`).
ENCRYPTED_TABLES: tuple[EncryptedTable, ...] = (CUSTOMERS,)


class RotationError(Exception):
    """A rotation that cannot run or continue; the message names rows by id, never values."""


@dataclass(frozen=True)
class RotationProgress:
    table: str
    batch: int
    rows_done: int
    rows_total: int


async def rotate_master(db: Database, ring: KeyProvider) -> int:
    """Rewrap every tenant key row not wrapped by the ring's current key; rerunnable.

    Each row is its own transaction; rows the ring cannot unwrap are left as they are and
    reported in one error after all the others have been rewrapped.
    """
    async with db.admin_engine.connect() as conn:
        pending = (
            await conn.execute(
                text(
                    "SELECT tenant_id, version FROM platform.tenant_keys"
                    " WHERE master_key_id <> :current ORDER BY tenant_id, version"
                ),
                {"current": ring.key_id},
            )
        ).all()
    rewrapped, failures = 0, []
    for tenant_id, version in pending:
        try:
            rewrapped += await _rewrap(db, ring, tenant_id, version)
        except MasterKeyError as exc:
            failures.append(f"tenant {tenant_id} version {version}: {exc}")
    if failures:
        raise MasterKeyError(
            f"rewrapped {rewrapped} tenant key rows; {len(failures)} could not be: {failures[0]}"
        )
    return rewrapped


async def _rewrap(db: Database, ring: KeyProvider, tenant_id: str, version: int) -> int:
    async with db.admin_engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT wrapped_data_key, wrapped_index_key, master_key_id FROM platform.tenant_keys"
                    " WHERE tenant_id = :t AND version = :v FOR UPDATE"
                ),
                {"t": tenant_id, "v": version},
            )
        ).first()
        if row is None or row.master_key_id == ring.key_id:
            return 0  # deleted or rewrapped by a concurrent run meanwhile
        data_key = ring.unwrap(row.wrapped_data_key, row.master_key_id, tenant_id, version)
        index_key = ring.unwrap(row.wrapped_index_key, row.master_key_id, tenant_id, version)
        await conn.execute(
            text(
                "UPDATE platform.tenant_keys SET wrapped_data_key = :d, wrapped_index_key = :i,"
                " master_key_id = :m WHERE tenant_id = :t AND version = :v"
            ),
            {
                "d": ring.wrap(data_key, tenant_id, version),
                "i": ring.wrap(index_key, tenant_id, version),
                "m": ring.key_id,
                "t": tenant_id,
                "v": version,
            },
        )
    return 1


async def rotate_tenant(
    db: Database,
    ring: KeyProvider,
    tenant: Tenant,
    batch_size: int = 500,
    progress: Callable[[RotationProgress], None] | None = None,
) -> dict[str, Any]:
    """Move the tenant's encrypted fields to a new data-key version; a rerun resumes a crashed run.

    A new version is made only when the previous rotation has finished (no rows behind the
    newest version and the older versions retired). Older keys are retired, not deleted:
    backups taken before the rotation still need them.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    async with _rotation_lock(db, tenant):
        to_version = await _target_version(db, ring, tenant)
        cipher = await cipher_for(db, ring, tenant, need_version=to_version)
        if cipher.current_version != to_version:
            raise RotationError(f"tenant {tenant.slug!r}: key version {to_version} is not the newest")
        from_versions: set[int] = set()
        rows_done = batches = 0
        for table in ENCRYPTED_TABLES:
            total = await _rows_behind(db, tenant, table, to_version)
            table_done = 0
            while True:
                versions = await _reencrypt_batch(db, tenant, cipher, table, batch_size)
                if not versions:
                    break
                batches += 1
                table_done += len(versions)
                from_versions.update(versions)
                if progress:
                    progress(RotationProgress(table.name, batches, table_done, total))
            rows_done += table_done
        remaining = 0
        for table in ENCRYPTED_TABLES:
            remaining += await _rows_behind(db, tenant, table, to_version)
        if remaining == 0:
            async with db.admin_engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE platform.tenant_keys SET retired_at = now()"
                        " WHERE tenant_id = :t AND version < :v AND retired_at IS NULL"
                    ),
                    {"t": tenant.id, "v": to_version},
                )
    return {
        "tenant": tenant.slug,
        "from_versions": sorted(from_versions),
        "to_version": to_version,
        "rows_reencrypted": rows_done,
        "batches": batches,
        "rows_remaining": remaining,  # rows another transaction held locked; a rerun takes them
    }


@asynccontextmanager
async def _rotation_lock(db: Database, tenant: Tenant) -> AsyncIterator[None]:
    """A session advisory lock: one rotation per tenant at a time; a crashed run's lock dies with it."""
    params = {"t": tenant.id}
    async with db.admin_engine.connect() as conn:
        got = await conn.scalar(
            text("SELECT pg_try_advisory_lock(hashtext('tenantcrm.pii.rotate'), hashtext(:t))"), params
        )
        await conn.commit()
        if not got:
            raise RotationError(f"a key rotation of tenant {tenant.slug!r} is already running")
        try:
            yield
        finally:
            await conn.execute(
                text("SELECT pg_advisory_unlock(hashtext('tenantcrm.pii.rotate'), hashtext(:t))"), params
            )
            await conn.commit()


async def _target_version(db: Database, ring: KeyProvider, tenant: Tenant) -> int:
    """The newest version if a rotation to it is unfinished, else a new version."""
    async with db.admin_engine.connect() as conn:
        newest, unretired = (
            await conn.execute(
                text(
                    "SELECT max(version), count(*) FILTER (WHERE retired_at IS NULL)"
                    " FROM platform.tenant_keys WHERE tenant_id = :t"
                ),
                {"t": tenant.id},
            )
        ).one()
    if newest is None:
        raise TenantKeysMissing(f"tenant {tenant.slug!r} has no data keys; rerun its provisioning")
    if unretired > 1:  # the newest is never retired: an older one is, once a rotation ends
        return newest
    for table in ENCRYPTED_TABLES:
        if await _rows_behind(db, tenant, table, newest):
            return newest
    async with db.admin_engine.begin() as conn:
        return await add_key_version(conn, ring, tenant.id)


async def _rows_behind(db: Database, tenant: Tenant, table: EncryptedTable, version: int) -> int:
    # Identifiers below come from ENCRYPTED_TABLES, never from input.
    query = text(f"SELECT count(*) FROM {table.name} WHERE {VERSION_COLUMN} < :v")  # noqa: S608
    async with tenant_session(db, tenant) as session:
        return await session.scalar(query, {"v": version}) or 0


async def _reencrypt_batch(
    db: Database, tenant: Tenant, cipher: TenantCipher, table: EncryptedTable, batch_size: int
) -> list[int]:
    """One transaction: re-encrypt up to batch_size rows behind; the old versions of the rows done."""
    columns = ", ".join(table.columns)
    assignments = ", ".join(f"{c} = :{c}" for c in table.columns)
    # Identifiers below come from ENCRYPTED_TABLES, never from input.
    pick = text(
        f"SELECT id, {VERSION_COLUMN} AS version, {columns} FROM {table.name}"  # noqa: S608
        f" WHERE {VERSION_COLUMN} < :v ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
    )
    write = text(f"UPDATE {table.name} SET {assignments}, {VERSION_COLUMN} = :v WHERE id = :id")  # noqa: S608
    async with tenant_session(db, tenant) as session:
        rows = (await session.execute(pick, {"v": cipher.current_version, "n": batch_size})).all()
        updates = [_reencrypted(cipher, table, row) for row in rows]
        if updates:
            await session.execute(write, updates)
    return [row.version for row in rows]


def _reencrypted(cipher: TenantCipher, table: EncryptedTable, row: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"id": row.id, "v": cipher.current_version}
    for column in table.columns:
        blob = row._mapping[column]
        if blob is None:
            values[column] = None
            continue
        try:
            plaintext = cipher.decrypt(table.name, column, row.id, blob)
        except PiiDecryptionError:
            raise RotationError(
                f"{table.name}.{column} of row {row.id} does not decrypt; this batch was not written"
            ) from None
        values[column] = cipher.encrypt(table.name, column, row.id, plaintext)
    return values
