"""Tenant keys: created by the admin engine, read by the app role, rewrapped under a new master key."""

import base64
import dataclasses
import os
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tenantcrm.pii.cipher import PiiDecryptionError
from tenantcrm.pii.keys import MasterKey, MasterKeyError, MasterKeyRing, master_key_ring
from tenantcrm.pii.rotation import rotate_master
from tenantcrm.pii.store import cipher_for, create_tenant_keys, forget
from tenantcrm.tenancy.session import unscoped_platform_session
from tests.integration.pii.conftest import with_keys


async def key_rows(db, tenant_id=None):
    query = "SELECT tenant_id, version, master_key_id, retired_at FROM platform.tenant_keys"
    params = {}
    if tenant_id:
        query += " WHERE tenant_id = :t"
        params["t"] = tenant_id
    async with db.admin_engine.connect() as conn:
        return (await conn.execute(text(query + " ORDER BY tenant_id, version"), params)).all()


async def test_keys_are_created_once_per_tenant(db, ring, tenant_a, tenant_b):
    for fx in (tenant_a, tenant_b):
        await with_keys(db, ring, fx.tenant)
        async with db.admin_engine.begin() as conn:
            assert await create_tenant_keys(conn, ring, fx.tenant.id) is False
        rows = await key_rows(db, fx.tenant.id)
        assert [(r.version, r.master_key_id, r.retired_at) for r in rows] == [(1, ring.key_id, None)]


async def test_a_new_tenant_gets_version_1(db, ring, lifecycle):
    from tests.conftest import make_tenant

    tenant = (await make_tenant(lifecycle, "keys")).tenant
    async with db.admin_engine.begin() as conn:
        await conn.execute(text("DELETE FROM platform.tenant_keys WHERE tenant_id = :t"), {"t": tenant.id})
        assert await create_tenant_keys(conn, ring, tenant.id) is True


async def test_ciphers_work_and_are_per_tenant(db, ring, tenant_a, tenant_b):
    a = await cipher_for(db, ring, await with_keys(db, ring, tenant_a.tenant))
    b = await cipher_for(db, ring, await with_keys(db, ring, tenant_b.tenant))
    assert await cipher_for(db, ring, tenant_a.tenant) is a  # cached
    forget(tenant_a.tenant.id)
    fresh = await cipher_for(db, ring, tenant_a.tenant)
    assert fresh is not a and fresh.blind_index("phone", "13812345678") == a.blind_index(
        "phone", "13812345678"
    )

    row = uuid.uuid4()
    blob = a.encrypt("customers", "phone_enc", row, "13812345678")
    assert fresh.decrypt("customers", "phone_enc", row, blob) == "13812345678"
    with pytest.raises(PiiDecryptionError):
        b.decrypt("customers", "phone_enc", row, blob)
    assert a.blind_index("phone", "13812345678") != b.blind_index("phone", "13812345678")


async def test_the_app_role_reads_wrapped_keys_but_cannot_write_them(db, ring, tenant_a):
    await with_keys(db, ring, tenant_a.tenant)
    with pytest.raises(DBAPIError, match="permission denied"):
        async with unscoped_platform_session(db) as session:
            await session.execute(
                text("UPDATE platform.tenant_keys SET master_key_id = 'x' WHERE tenant_id = :t"),
                {"t": tenant_a.tenant.id},
            )


async def test_rotate_master_rewraps_every_key_and_everything_still_decrypts(
    db, ring, settings, tenant_a, tenant_b
):
    tenants = [await with_keys(db, ring, fx.tenant) for fx in (tenant_a, tenant_b)]
    row = uuid.uuid4()
    sealed = {}
    for tenant in tenants:
        forget(tenant.id)
        sealed[tenant.id] = (await cipher_for(db, ring, tenant)).encrypt(
            "customers", "email_enc", row, "a@b.cn"
        )

    old_b64 = base64.b64encode(ring.current.key).decode()
    new_b64 = base64.b64encode(os.urandom(32)).decode()
    new_ring = master_key_ring(
        dataclasses.replace(settings, master_key=new_b64, previous_master_keys=(old_b64,))
    )
    assert new_ring.key_id != ring.key_id
    try:
        before = len([r for r in await key_rows(db) if r.master_key_id != new_ring.key_id])
        assert await rotate_master(db, new_ring) == before >= 2
        assert {r.master_key_id for r in await key_rows(db)} == {new_ring.key_id}
        assert await rotate_master(db, new_ring) == 0  # rerunnable

        for tenant in tenants:
            forget(tenant.id)
            cipher = await cipher_for(db, new_ring, tenant)
            assert cipher.decrypt("customers", "email_enc", row, sealed[tenant.id]) == "a@b.cn"

        # The ring the app had before (old key only) no longer unwraps anything.
        forget(tenants[0].id)
        with pytest.raises(MasterKeyError, match=f"master key {new_ring.key_id} is not configured") as caught:
            await cipher_for(db, ring, tenants[0])
        assert "\n" not in str(caught.value) and new_b64 not in str(caught.value)

        # Nor can a ring without the new key rewrap: the rows stay as they were.
        stranger = MasterKeyRing(MasterKey(os.urandom(32)))
        with pytest.raises(MasterKeyError, match="rewrapped 0 tenant key rows"):
            await rotate_master(db, stranger)
        assert {r.master_key_id for r in await key_rows(db)} == {new_ring.key_id}
    finally:
        # Hand every tenant of this run back to the settings' ring for the other tests.
        back = MasterKeyRing(ring.current, (new_ring.current,))
        await rotate_master(db, back)
        for tenant in tenants:
            forget(tenant.id)
    assert {r.master_key_id for r in await key_rows(db)} == {ring.key_id}
    cipher = await cipher_for(db, ring, tenants[0])
    assert cipher.decrypt("customers", "email_enc", row, sealed[tenants[0].id]) == "a@b.cn"
