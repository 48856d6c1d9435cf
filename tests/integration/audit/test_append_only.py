"""Audit rows cannot be changed by the application, and a superuser's edit is found by verify."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tenantcrm.audit.service import verify
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant
from tests.integration.audit.helpers import seed_events, superuser_edit


async def _verify(db, tenant):
    async with tenant_session(db, tenant) as session:
        return await verify(session)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_events WHERE seq = 1",
        "TRUNCATE audit_events",
    ],
)
async def test_the_tenant_role_cannot_change_or_remove_audit_rows(db, fresh_tenant, statement):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 2)
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_session(db, tenant) as session:
            await session.execute(text(statement))
    assert (await _verify(db, tenant)).intact


@pytest.mark.parametrize(
    "statement",
    ["UPDATE {events} SET actor = 'someone else' WHERE seq = 1", "DELETE FROM {events} WHERE seq = 1"],
)
async def test_even_the_superuser_meets_the_trigger(db, fresh_tenant, statement):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.admin_engine.begin() as conn:
            await conn.execute(text(statement.format(events=f'"{tenant.schema}".audit_events')))
    assert (await _verify(db, tenant)).intact


async def test_a_superuser_edit_of_one_row_is_found_at_its_sequence_number(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 120)
    assert (await _verify(db, tenant)).intact
    await superuser_edit(
        db, tenant, "UPDATE {events} SET changes = jsonb_set(changes, '{{n}}', '999') WHERE seq = 57"
    )
    result = await _verify(db, tenant)
    assert not result.intact and result.first_broken_seq == 57 and result.length == 120


async def test_an_edit_that_also_rewrites_the_rows_hash_breaks_the_next_link(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 60)
    await superuser_edit(
        db, tenant, "UPDATE {events} SET actor = 'forger', hash = sha256(hash) WHERE seq = 57"
    )
    assert (await _verify(db, tenant)).first_broken_seq == 57
    await superuser_edit(db, tenant, "UPDATE {events} SET hash = sha256(hash) WHERE seq = 59")
    assert (await _verify(db, tenant)).first_broken_seq == 57  # the first break is still named


@pytest.mark.parametrize(
    ("statement", "broken"),
    [
        ("DELETE FROM {events} WHERE seq = 30", 30),
        ("DELETE FROM {events} WHERE seq = 1", 1),
        ("DELETE FROM {events} WHERE seq = 60", 60),  # the last one: the head still names it
        ("DELETE FROM {events} WHERE seq >= 1000", None),  # nothing deleted: still intact
        ("UPDATE {events} SET at = at + interval '1 microsecond' WHERE seq = 12", 12),
        ("UPDATE {events} SET entity_id = NULL WHERE seq = 44", 44),
        ("UPDATE {events} SET changes = '{{}}' WHERE seq = 5", 5),
        ("UPDATE {events} SET prev_hash = '\\x00' WHERE seq = 2", 2),
        (
            "INSERT INTO {events} (seq, at, actor, action, entity_type, changes, prev_hash, hash)"
            " SELECT 61, now(), 'x', 'create', 'y', '{{}}', hash, hash FROM {events} WHERE seq = 60",
            61,
        ),
    ],
)
async def test_deleted_altered_and_foreign_rows_are_breaks(db, lifecycle, statement, broken):
    tenant = (await make_tenant(lifecycle, "tamper")).tenant
    await seed_events(db, tenant, 60)
    await superuser_edit(db, tenant, statement)
    result = await _verify(db, tenant)
    assert result.first_broken_seq == broken and result.length == 60
    await lifecycle.delete(tenant.slug)


async def test_a_moved_head_is_a_break(db, fresh_tenant):
    tenant = fresh_tenant.tenant
    await seed_events(db, tenant, 10)
    async with db.admin_engine.begin() as conn:
        await conn.execute(text(f'UPDATE "{tenant.schema}".audit_chain_head SET hash = sha256(hash)'))
    assert (await _verify(db, tenant)).first_broken_seq == 10
