"""Audit events as a retention category: a verified prefix goes under a checkpoint, verify anchors on
it, the pruning function refuses anything else, legal hold keeps history, backups keep checkpoints."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import uuid
from datetime import UTC, date, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tenantcrm.audit import service as audit_service
from tenantcrm.audit.cli import register as register_audit
from tenantcrm.audit.models import AuditCheckpoint, AuditEvent
from tenantcrm.audit.service import verify
from tenantcrm.cli import CommandError
from tenantcrm.retention.cli import register as register_retention
from tenantcrm.retention.service import RetentionService, cutoff_of, validate_policies
from tenantcrm.tenancy.backup import backup, restore
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import make_tenant, principal_of
from tests.integration.audit.helpers import seed_aged_events, superuser_edit
from tests.integration.retention.helpers import AS_OF, fingerprint

PRUNE = text("SELECT audit_prune(:seq, :hash, :cutoff, :run, :actor)")


async def _bank(db, lifecycle, prefix: str = "auditret"):
    fixture = await make_tenant(lifecycle, prefix)
    return fixture.tenant, await principal_of(db, fixture.tenant, fixture.admin_email)


async def _policy(db, tenant, admin, days: int, *, enabled: bool = True) -> None:
    row = {"category": "audit_events", "period_days": str(days), "action": "delete", "enabled": enabled}
    async with tenant_session(db, tenant) as session:
        await RetentionService(session, admin).update_policies([row])


async def _plan(db, tenant, admin, as_of: date = AS_OF):
    async with tenant_session(db, tenant) as session:
        return await RetentionService(session, admin).plan(as_of)


async def _run(db, tenant, admin, as_of: date = AS_OF):
    async with tenant_session(db, tenant) as session:
        return await RetentionService(session, admin).run(as_of)


async def _verify(db, tenant):
    async with tenant_session(db, tenant) as session:
        return await verify(session)


async def _checkpoints(db, tenant) -> list[AuditCheckpoint]:
    async with tenant_session(db, tenant) as session:
        return list(await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


async def _event_seqs(db, tenant) -> list[int]:
    async with tenant_session(db, tenant) as session:
        return list(await session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))


async def _pruned(db, lifecycle):
    """A tenant whose events 1..40 (800 days old) went under one checkpoint; 41..45 are 100 days
    old, 46 the policy change, 47 the run."""
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 40 + [100] * 5)
    await _policy(db, tenant, admin, 365)
    assert (await _run(db, tenant, admin)).counts() == {"audit_events": 40}
    return tenant, admin


def test_the_policy_is_delete_only_and_a_year_at_least():
    def row(days: str, action: str = "delete") -> list[dict[str, str]]:
        return [{"category": "audit_events", "period_days": days, "action": action, "enabled": "on"}]

    assert validate_policies(row("365")) == {"audit_events": (365, "delete", True)}
    for refused, field in ((row("364"), "period_days"), (row("400", "anonymise"), "action")):
        with pytest.raises(InvalidInput) as error:
            validate_policies(refused)
        assert [e.field for e in error.value.errors] == [f"audit_events.{field}"]
    with pytest.raises(InvalidInput) as error:
        validate_policies(row("100"))
    assert error.value.errors[0].params == {"low": "365", "high": "3650"}


async def test_dry_run_counts_what_the_run_prunes_and_the_chain_still_verifies(db, lifecycle):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 40 + [100] * 5)
    await _policy(db, tenant, admin, 365)  # event 46
    # A date 400 days ahead would make the 100-day-old events due; real time keeps them.
    later = AS_OF + timedelta(days=400)

    before = await fingerprint(db, tenant)
    planned = await _plan(db, tenant, admin, later)
    assert planned.counts() == {"audit_events": 40} and planned.audit_chain_broken_at() is None
    assert await fingerprint(db, tenant) == before  # nothing changed, no checkpoint left behind

    done = await _run(db, tenant, admin, later)
    assert done.counts() == planned.counts()
    result = await _verify(db, tenant)
    assert result.intact and result.checkpoint_seq == 40 and result.length == 47
    (checkpoint,) = await _checkpoints(db, tenant)
    assert (checkpoint.seq, checkpoint.prev_seq, checkpoint.events_removed) == (40, 0, 40)
    assert (checkpoint.run_id, checkpoint.actor) == (done.run_id, admin.email)
    async with tenant_session(db, tenant) as session:
        first = await session.scalar(select(AuditEvent).where(AuditEvent.seq == 41))
        run_event = await session.scalar(select(AuditEvent).where(AuditEvent.entity_type == "retention"))
    assert await _event_seqs(db, tenant) == list(range(41, 48))
    assert bytes(first.prev_hash) == bytes(checkpoint.hash)  # the anchor verify starts from
    # The run's own event comes after the pruning: never removed by its own run.
    assert run_event.seq == 47 and run_event.changes["counts"]["audit_events"]["count"] == 40
    assert (await _plan(db, tenant, admin, later)).counts() == {"audit_events": 0}


async def test_checkpoints_chain_run_after_run_and_the_cli_reports_them(db, lifecycle, settings, capsys):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 30 + [700] * 20 + [100] * 3)
    await _policy(db, tenant, admin, 600)
    assert (await _run(db, tenant, admin, AS_OF - timedelta(days=150))).counts() == {"audit_events": 30}

    parser = argparse.ArgumentParser(prog="tenantcrm")
    commands = parser.add_subparsers(dest="command", required=True)
    register_retention(commands, CommandError)
    register_audit(commands)
    dry = parser.parse_args(["retention", "run", tenant.slug, "--dry-run", "--json"])
    assert await asyncio.to_thread(dry.run, settings, dry) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"audit_events": 20}

    assert (await _run(db, tenant, admin)).counts() == {"audit_events": 20}
    checkpoints = await _checkpoints(db, tenant)
    assert [(c.seq, c.prev_seq, c.events_removed) for c in checkpoints] == [(30, 0, 30), (50, 30, 20)]
    assert checkpoints[0].cutoff == cutoff_of(AS_OF - timedelta(days=150), 600)
    verify_args = parser.parse_args(["audit", "verify", tenant.slug])
    assert await asyncio.to_thread(verify_args.run, settings, verify_args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"tenant": tenant.slug, "length": 56, "intact": True, "checkpoint_seq": 50}

    # The older checkpoint rewritten: the chain of checkpoints breaks there.
    await superuser_edit(
        db, tenant, "UPDATE {checkpoints} SET cutoff = cutoff - interval '1 day' WHERE seq = 30"
    )
    assert await asyncio.to_thread(verify_args.run, settings, verify_args) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "tenant": tenant.slug,
        "length": 56,
        "intact": False,
        "first_broken_seq": 30,
        "broken_checkpoint": True,
    }
    assert captured.err == f"error: audit chain of {tenant.slug} broken at the checkpoint at sequence 30\n"


@pytest.mark.parametrize(
    ("statement", "broken", "in_checkpoint"),
    [
        ("UPDATE {events} SET changes = '{{}}' WHERE seq = 43", 43, False),
        ("UPDATE {events} SET prev_hash = sha256(prev_hash) WHERE seq = 41", 41, False),
        ("DELETE FROM {events} WHERE seq = 41", 41, False),  # removed without a checkpoint
        ("DELETE FROM {events} WHERE seq <= 44", 41, False),
        ("DELETE FROM {checkpoints}", 1, False),  # events 1..40 gone, nothing vouches for it
        ("UPDATE {checkpoints} SET hash = sha256(hash)", 40, True),
        ("UPDATE {checkpoints} SET actor = 'someone else'", 40, True),
        ("UPDATE {checkpoints} SET seq = 41, events_removed = 41", 41, True),
        ("UPDATE {checkpoints} SET seq = 100, events_removed = 100", 100, True),  # beyond the head
    ],
)
async def test_tampering_after_pruning_is_found(db, lifecycle, statement, broken, in_checkpoint):
    tenant, _ = await _pruned(db, lifecycle)
    await superuser_edit(db, tenant, statement)
    result = await _verify(db, tenant)
    assert (result.first_broken_seq, result.broken_checkpoint) == (broken, in_checkpoint)
    assert result.length == 47
    await lifecycle.delete(tenant.slug)


async def test_an_event_planted_below_the_latest_checkpoint_is_a_break(db, lifecycle):
    """Pruning frees the seqs it removed; the tenant role may INSERT events, so a forged, backdated
    event there must not pass verify as history the checkpoint vouches for."""
    tenant, _ = await _pruned(db, lifecycle)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text(
                "INSERT INTO audit_events (seq, at, actor_id, actor, action, entity_type, entity_id, changes,"
                " prev_hash, hash) SELECT 5, at - interval '700 days', actor_id, actor, action, entity_type,"
                " entity_id, changes, prev_hash, hash FROM audit_events WHERE seq = 41"
            )
        )
    result = await _verify(db, tenant)
    assert (result.first_broken_seq, result.broken_checkpoint, result.checkpoint_seq) == (5, False, 40)
    await lifecycle.delete(tenant.slug)


async def test_an_event_planted_before_the_chain_is_reported_by_the_run_not_a_failure(db, lifecycle):
    """Seq 0 lies below the start of an unpruned chain: verify names it, and the run reports it
    instead of failing on audit_prune's refusal (the other categories run as usual)."""
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 10)
    await _policy(db, tenant, admin, 365)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text(
                "INSERT INTO audit_events (seq, at, actor_id, actor, action, entity_type, entity_id, changes,"
                " prev_hash, hash) SELECT 0, at, actor_id, actor, action, entity_type, entity_id, changes,"
                " prev_hash, hash FROM audit_events WHERE seq = 1"
            )
        )
    assert (await _verify(db, tenant)).first_broken_seq == 0
    done = await _run(db, tenant, admin)
    assert done.counts() == {"audit_events": 0} and done.audit_chain_broken_at() == 0
    assert await _checkpoints(db, tenant) == [] and (await _event_seqs(db, tenant))[:2] == [0, 1]
    await lifecycle.delete(tenant.slug)


async def test_only_the_pruning_function_removes_events_and_writes_checkpoints(db, lifecycle):
    tenant, _ = await _pruned(db, lifecycle)
    schema = tenant.schema
    for statement in (
        "DELETE FROM audit_events WHERE seq = 41",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_events SET actor = 'x' WHERE seq = 41",
        "INSERT INTO audit_checkpoints SELECT seq + 1, hash, seq, 1, cutoff, at, run_id, actor, row_hash"
        " FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET actor = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_session(db, tenant) as session:
                await session.execute(text(statement))
    # Even the owner meets the triggers: an event no checkpoint covers stays, checkpoints stay.
    for statement, refusal in (
        ('DELETE FROM "{s}".audit_events WHERE seq = 41', "audit events are append-only"),
        ("UPDATE \"{s}\".audit_events SET actor = 'x' WHERE seq = 41", "audit events are append-only"),
        ("UPDATE \"{s}\".audit_checkpoints SET actor = 'x'", "audit checkpoints are append-only"),
        ('DELETE FROM "{s}".audit_checkpoints', "audit checkpoints are append-only"),
    ):
        with pytest.raises(DBAPIError, match=refusal):
            async with db.admin_engine.begin() as conn:
                await conn.execute(text(statement.format(s=schema)))
    result = await _verify(db, tenant)
    assert result.intact and result.checkpoint_seq == 40
    assert await _event_seqs(db, tenant) == list(range(41, 48))


async def test_the_pruning_function_refuses_anything_but_a_verified_prefix_before_the_cut_off(
    db, lifecycle, tenant_b
):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 40 + [100] * 5)
    await _policy(db, tenant, admin, 365)
    async with tenant_session(db, tenant) as session:
        hashes = {seq: bytes(h) for seq, h in await session.execute(select(AuditEvent.seq, AuditEvent.hash))}
        now = await session.scalar(select(func.now()))
    due = cutoff_of(now.astimezone(UTC).date(), 365)
    run = uuid.uuid4()

    def call(seq, digest, cutoff=due, run_id=run, actor="system:test"):
        return {"seq": seq, "hash": digest, "cutoff": cutoff, "run": run_id, "actor": actor}

    refusals = [
        (call(40, hashlib.sha256(b"forged").digest()), "hash is not the expected one"),
        (call(40, hashes[39]), "hash is not the expected one"),
        (call(42, hashes[42]), "not before the cut-off"),  # 41 and 42 are 100 days old
        (call(42, hashes[42], now - timedelta(days=50)), "later than the policy allows"),
        (call(40, hashes[40], now - timedelta(days=364)), "later than the policy allows"),
        (call(999, b"x"), "outside the remaining chain"),
        (call(0, b""), "outside the remaining chain"),
        (call(40, hashes[40], run_id=None), "a run id and an actor are required"),
        (call(40, hashes[40], actor=" "), "a run id and an actor are required"),
    ]
    for params, refusal in refusals:
        with pytest.raises(DBAPIError, match=refusal):
            async with tenant_session(db, tenant) as session:
                await session.execute(PRUNE, params)
    # The policy's minimum holds in the database too, and a disabled policy prunes nothing.
    with pytest.raises(DBAPIError, match="retention_policies_audit_events"):
        async with tenant_session(db, tenant) as session:
            await session.execute(
                text("UPDATE retention_policies SET period_days = 100 WHERE category = 'audit_events'")
            )
    await _policy(db, tenant, admin, 365, enabled=False)
    with pytest.raises(DBAPIError, match="policy is not enabled"):
        async with tenant_session(db, tenant) as session:
            await session.execute(PRUNE, call(40, hashes[40]))
    await _policy(db, tenant, admin, 365)
    # Another tenant's role cannot reach the function at all.
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_session(db, tenant_b.tenant) as session:
            await session.execute(
                text(f'SELECT "{tenant.schema}".audit_prune(:seq, :hash, :cutoff, :run, :actor)'),
                call(40, hashes[40]),
            )
    # 46..48: the policy enabled, disabled, enabled again.
    assert await _event_seqs(db, tenant) == list(range(1, 49)) and await _checkpoints(db, tenant) == []

    # A link broken inside the prefix (the end's hash still right): the function checks the links.
    await superuser_edit(db, tenant, "UPDATE {events} SET prev_hash = sha256(prev_hash) WHERE seq = 10")
    with pytest.raises(DBAPIError, match="not one unbroken chain"):
        async with tenant_session(db, tenant) as session:
            await session.execute(PRUNE, call(40, hashes[40]))
    await superuser_edit(db, tenant, "UPDATE {events} SET prev_hash = :h WHERE seq = 10", h=hashes[9])

    async with tenant_session(db, tenant) as session:
        assert await session.scalar(PRUNE, call(20, hashes[20])) == 20
    with pytest.raises(DBAPIError, match="outside the remaining chain"):
        async with tenant_session(db, tenant) as session:
            await session.execute(PRUNE, call(20, hashes[20]))
    async with tenant_session(db, tenant) as session:
        assert await session.scalar(PRUNE, call(40, hashes[40])) == 20
    result = await _verify(db, tenant)
    assert result.intact and result.checkpoint_seq == 40
    assert [(c.seq, c.prev_seq) for c in await _checkpoints(db, tenant)] == [(20, 0), (40, 20)]


async def test_a_prefix_that_does_not_verify_is_not_pruned_and_the_run_says_where(
    db, lifecycle, settings, capsys
):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 40)
    await _policy(db, tenant, admin, 365)
    await superuser_edit(db, tenant, "UPDATE {events} SET changes = '{{\"n\": 0}}' WHERE seq = 12")

    parser = argparse.ArgumentParser(prog="tenantcrm")
    register_retention(parser.add_subparsers(dest="command", required=True), CommandError)
    args = parser.parse_args(["retention", "run", tenant.slug, "--dry-run", "--json"])
    assert await asyncio.to_thread(args.run, settings, args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"audit_events": 0} and report["audit_chain_broken_at"] == 12

    done = await _run(db, tenant, admin)
    assert done.counts() == {"audit_events": 0} and done.audit_chain_broken_at() == 12
    async with tenant_session(db, tenant) as session:
        run_event = await session.scalar(select(AuditEvent).where(AuditEvent.entity_type == "retention"))
    assert run_event.changes["counts"]["audit_events"] == {
        "action": "delete",
        "period_days": 365,
        "count": 0,
        "broken_at": 12,
    }
    assert await _event_seqs(db, tenant) == list(range(1, 43)) and await _checkpoints(db, tenant) == []
    assert (await _verify(db, tenant)).first_broken_seq == 12


async def test_legal_hold_stops_pruning_at_the_first_event_about_the_held_customer(db, lifecycle):
    tenant, admin = await _bank(db, lifecycle)
    customer_id, interaction_id = uuid.uuid4(), uuid.uuid4()
    # Event 11 is about the customer's interaction, event 21 about the customer itself.
    refs = {10: ("interaction", str(interaction_id)), 20: ("customer", str(customer_id))}
    await seed_aged_events(db, tenant, [800] * 40, refs=refs)
    async with tenant_session(db, tenant) as session:
        await session.execute(
            text("INSERT INTO customers (id, kind, name, legal_hold) VALUES (:id, 'individual', '甲', true)"),
            {"id": customer_id},
        )
        await session.execute(
            text(
                "INSERT INTO interactions (id, customer_id, at, channel, summary)"
                " VALUES (:id, :customer, now(), 'phone', '电话')"
            ),
            {"id": interaction_id, "customer": customer_id},
        )
        other = await session.scalar(
            text(
                "INSERT INTO customers (kind, name, legal_hold)"
                " VALUES ('individual', '乙', true) RETURNING id"
            )
        )
    await _policy(db, tenant, admin, 365)

    assert (await _plan(db, tenant, admin)).counts() == {"audit_events": 10}
    assert (await _run(db, tenant, admin)).counts() == {"audit_events": 10}
    assert (await _verify(db, tenant)).checkpoint_seq == 10

    # Released: its history goes like everyone's (the other customer's hold names no old event).
    async with tenant_session(db, tenant) as session:
        await RetentionService(session, admin).set_legal_hold(customer_id, False)
    assert (await _run(db, tenant, admin)).counts() == {"audit_events": 30}
    result = await _verify(db, tenant)
    assert result.intact and result.checkpoint_seq == 40
    assert [(c.seq, c.prev_seq) for c in await _checkpoints(db, tenant)] == [(10, 0), (40, 10)]
    async with tenant_session(db, tenant) as session:
        assert (
            await session.scalar(text("SELECT legal_hold FROM customers WHERE id = :id"), {"id": other})
        ) is True


async def test_backup_and_restore_keep_checkpoints_and_the_restored_tenant_prunes_on(
    db, lifecycle, settings, tmp_path
):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 40 + [500] * 10 + [100] * 3)
    await _policy(db, tenant, admin, 600)
    assert (await _run(db, tenant, admin)).counts() == {"audit_events": 40}

    file = tmp_path / "audit.zip"
    await backup(lifecycle, tenant.slug, file)
    copy_slug = f"acopy-{secrets.token_hex(3)}"
    await restore(lifecycle, file, copy_slug)
    copy = await lifecycle.get(copy_slug)
    assert [(c.seq, c.hash, c.row_hash) for c in await _checkpoints(db, copy)] == [
        (c.seq, c.hash, c.row_hash) for c in await _checkpoints(db, tenant)
    ]
    restored = await _verify(db, copy)
    assert restored.intact and restored.checkpoint_seq == 40 and restored.length == 55
    async with db.admin_engine.connect() as conn:
        config = await conn.scalar(
            text(
                "SELECT array_to_string(p.proconfig, ',') FROM pg_proc p"
                " JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = :s AND p.proname = 'audit_prune'"
            ),
            {"s": copy.schema},
        )
        may = await conn.scalar(
            text("SELECT has_function_privilege(:role, :fn, 'EXECUTE')"),
            {
                "role": copy.schema,
                "fn": f'"{copy.schema}".audit_prune(bigint, bytea, timestamptz, uuid, text)',
            },
        )
    assert config == f"search_path={copy.schema}, pg_temp" and may is True
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_session(db, copy) as session:
            await session.execute(text("DELETE FROM audit_events"))

    copy_admin = await principal_of(db, copy, admin.email)
    await _policy(db, copy, copy_admin, 400)
    assert (await _run(db, copy, copy_admin)).counts() == {"audit_events": 10}
    result = await _verify(db, copy)
    assert result.intact and result.checkpoint_seq == 50
    await lifecycle.delete(copy_slug)


async def test_verify_is_not_fooled_by_a_run_pruning_under_it(db, lifecycle, monkeypatch):
    tenant, admin = await _bank(db, lifecycle)
    await seed_aged_events(db, tenant, [800] * 30)
    await _policy(db, tenant, admin, 365)
    read_anchor = audit_service._anchor
    pruned: list[dict[str, int]] = []

    async def anchor_then_prune(session):
        anchor = await read_anchor(session)
        if session is verifying[0] and not pruned:  # a run commits between the anchor and the walk
            pruned.append({})
            pruned[0] = (await _run(db, tenant, admin)).counts()
        return anchor

    monkeypatch.setattr(audit_service, "_anchor", anchor_then_prune)
    verifying = [None]
    async with tenant_session(db, tenant) as session:
        verifying[0] = session
        result = await verify(session)
    assert pruned == [{"audit_events": 30}]
    assert result.intact and result.checkpoint_seq == 30 and result.length == 32  # the run's event too
