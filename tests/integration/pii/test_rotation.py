"""Data-key rotation: re-encrypts in batches, resumes after a crash, retires the old version."""

import asyncio
import uuid

import pytest
from sqlalchemy import text

from tenantcrm.pii.cipher import TenantCipher, version_of
from tenantcrm.pii.masking import normalize_national_id, normalize_phone
from tenantcrm.pii.rotation import RotationError, rotate_tenant
from tenantcrm.pii.store import cipher_for, forget
from tenantcrm.tenancy.session import tenant_session

ROWS = 1200


async def fill(db, ring, tenant, count=ROWS) -> dict[uuid.UUID, tuple[str, str]]:
    """Customers with an encrypted national ID and phone, inserted as the tenant's role."""
    cipher = await cipher_for(db, ring, tenant)
    people = {uuid.uuid4(): (f"3701021990{i:07d}X", f"138{i:08d}") for i in range(count)}
    values = [
        {
            "id": row_id,
            "name": f"客户{n}",
            "nid": cipher.encrypt("customers", "national_id_enc", row_id, national_id),
            "phone": cipher.encrypt("customers", "phone_enc", row_id, phone),
            "nid_bidx": cipher.blind_index("national_id", normalize_national_id(national_id)),
            "phone_bidx": cipher.blind_index("phone", normalize_phone(phone)),
            "v": cipher.current_version,
        }
        for n, (row_id, (national_id, phone)) in enumerate(people.items())
    ]
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text(
                "INSERT INTO customers (id, kind, name, national_id_enc, phone_enc,"
                " national_id_bidx, phone_bidx, pii_key_version)"
                " VALUES (:id, 'individual', :name, :nid, :phone, :nid_bidx, :phone_bidx, :v)"
            ),
            values,
        )
        # A customer without PII has no key version and is left alone.
        await session.execute(text("INSERT INTO customers (kind, name) VALUES ('enterprise', '无证件')"))
    return people


async def stored(db, tenant):
    async with tenant_session(db, tenant) as session:
        return (
            await session.execute(
                text(
                    "SELECT id, national_id_enc, phone_enc, email_enc, address_enc, national_id_bidx,"
                    " pii_key_version FROM customers ORDER BY id"
                )
            )
        ).all()


async def key_versions(db, tenant):
    async with db.admin_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT version, retired_at FROM platform.tenant_keys WHERE tenant_id = :t ORDER BY version"
            ),
            {"t": tenant.id},
        )
        return {r.version: r.retired_at is not None for r in rows}


def assert_all_decrypt(cipher: TenantCipher, rows, people) -> None:
    rows = [r for r in rows if r.pii_key_version is not None]
    assert len(rows) == len(people)
    for row in rows:
        national_id, phone = people[row.id]
        assert version_of(row.national_id_enc) == version_of(row.phone_enc) == row.pii_key_version
        assert cipher.decrypt("customers", "national_id_enc", row.id, row.national_id_enc) == national_id
        assert cipher.decrypt("customers", "phone_enc", row.id, row.phone_enc) == phone
        assert row.email_enc is None and row.address_enc is None
        assert row.national_id_bidx == cipher.blind_index("national_id", national_id)


async def test_rotation_reencrypts_every_row_in_batches_and_retires_the_old_key(db, ring, keyed_tenant):
    tenant = keyed_tenant
    people = await fill(db, ring, tenant)
    steps = []

    result = await rotate_tenant(db, ring, tenant, batch_size=500, progress=steps.append)

    assert result == {
        "tenant": tenant.slug,
        "from_versions": [1],
        "to_version": 2,
        "rows_reencrypted": ROWS,
        "batches": 3,
        "rows_remaining": 0,
    }
    assert [(s.batch, s.rows_done, s.rows_total) for s in steps] == [
        (1, 500, ROWS),
        (2, 1000, ROWS),
        (3, ROWS, ROWS),
    ]
    rows = await stored(db, tenant)
    assert {r.pii_key_version for r in rows} == {2, None}
    assert_all_decrypt(await cipher_for(db, ring, tenant, need_version=2), rows, people)
    assert await key_versions(db, tenant) == {1: True, 2: False}

    # A finished rotation lets the next one start a new version.
    again = await rotate_tenant(db, ring, tenant, batch_size=1000)
    assert (again["from_versions"], again["to_version"], again["batches"]) == ([2], 3, 2)
    assert await key_versions(db, tenant) == {1: True, 2: True, 3: False}
    assert_all_decrypt(await cipher_for(db, ring, tenant), await stored(db, tenant), people)


async def test_an_interrupted_rotation_still_decrypts_and_a_rerun_finishes_it(db, ring, keyed_tenant):
    tenant = keyed_tenant
    people = await fill(db, ring, tenant)

    class Crash(Exception):
        pass

    def crash_after_first_batch(step):
        raise Crash

    with pytest.raises(Crash):
        await rotate_tenant(db, ring, tenant, batch_size=500, progress=crash_after_first_batch)

    rows = await stored(db, tenant)
    versions = [r.pii_key_version for r in rows if r.pii_key_version is not None]
    assert (versions.count(1), versions.count(2)) == (700, 500)
    forget(tenant.id)  # as another process would see it
    assert_all_decrypt(await cipher_for(db, ring, tenant), rows, people)
    assert await key_versions(db, tenant) == {1: False, 2: False}

    result = await rotate_tenant(db, ring, tenant, batch_size=500)

    assert result["to_version"] == 2 and result["from_versions"] == [1]
    assert (result["rows_reencrypted"], result["batches"], result["rows_remaining"]) == (700, 2, 0)
    assert await key_versions(db, tenant) == {1: True, 2: False}
    rows = await stored(db, tenant)
    assert {r.pii_key_version for r in rows} == {2, None}
    assert_all_decrypt(await cipher_for(db, ring, tenant), rows, people)


async def test_a_locked_row_is_left_for_a_rerun_and_keeps_the_old_key_active(db, ring, keyed_tenant):
    tenant = keyed_tenant
    people = await fill(db, ring, tenant, count=10)
    held = sorted(people)[0]
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold_row():
        async with tenant_session(db, tenant) as session:
            await session.execute(text("SELECT 1 FROM customers WHERE id = :id FOR UPDATE"), {"id": held})
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold_row())
    await locked.wait()
    try:
        result = await rotate_tenant(db, ring, tenant, batch_size=4)
    finally:
        release.set()
        await holder
    assert (result["rows_reencrypted"], result["rows_remaining"], result["batches"]) == (9, 1, 3)
    assert await key_versions(db, tenant) == {1: False, 2: False}

    rerun = await rotate_tenant(db, ring, tenant, batch_size=4)
    assert (rerun["to_version"], rerun["rows_reencrypted"], rerun["rows_remaining"]) == (2, 1, 0)
    assert await key_versions(db, tenant) == {1: True, 2: False}
    assert_all_decrypt(await cipher_for(db, ring, tenant), await stored(db, tenant), people)


async def test_one_rotation_per_tenant_at_a_time(db, ring, keyed_tenant):
    tenant = keyed_tenant
    async with db.admin_engine.connect() as conn:
        await conn.execute(
            text("SELECT pg_advisory_lock(hashtext('tenantcrm.pii.rotate'), hashtext(:t))"), {"t": tenant.id}
        )
        try:
            with pytest.raises(RotationError, match="already running"):
                await rotate_tenant(db, ring, tenant)
        finally:
            await conn.execute(
                text("SELECT pg_advisory_unlock(hashtext('tenantcrm.pii.rotate'), hashtext(:t))"),
                {"t": tenant.id},
            )
            await conn.commit()
    assert await key_versions(db, tenant) == {1: False}
    empty = await rotate_tenant(db, ring, tenant)
    assert (empty["to_version"], empty["rows_reencrypted"], empty["batches"]) == (2, 0, 0)
    assert await key_versions(db, tenant) == {1: True, 2: False}
