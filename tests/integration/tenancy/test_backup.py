"""Tenant backup and restore: a round trip beside the original, PII still readable, bad files refused."""

from __future__ import annotations

import json
import os
import secrets
import struct
import uuid
import zipfile

import pytest
from sqlalchemy import text

from tenantcrm.audit.service import verify as verify_audit_chain
from tenantcrm.contacts.service import ContactService
from tenantcrm.customers.service import CustomerFilter, CustomerService
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.store import cipher_for, cipher_source
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.backup import ENCRYPTED_FIELDS, BackupError, backup, restore
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import make_tenant, principal_of
from tests.integration.customers.test_pii import fresh_id
from tests.integration.tenancy.test_cli import run_cli

ADDRESS = "上海市黄浦区南京东路100号"


async def _seed(db, settings, fixture):
    """Customers with every PII field, a contact, and an import job whose staged row holds PII."""
    ring = master_key_ring(settings)
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    national_id = fresh_id()
    async with tenant_session(db, fixture.tenant) as session:
        service = CustomerService(session, admin, cipher_source(db, ring, fixture.tenant))
        wanted = await service.create_customer(
            {"name": "王五", "national_id": national_id, "phone": "13812345678", "address": ADDRESS}
        )
        await service.create_customer({"name": "赵六", "email": "zhao@example.com"})
        await service.reveal_pii(wanted.id, ["phone"], purpose="call back", channel="web")  # a log row
        await ContactService(session, admin).log_interaction(
            wanted.id, {"channel": "phone", "summary": "客户表示下月还款。"}
        )
        cipher = await cipher_for(db, ring, fixture.tenant)
        job_id = uuid.uuid4()
        await session.execute(
            text(
                "INSERT INTO import_jobs (id, file_name, file_enc, pii_key_version, status)"
                " VALUES (:id, 'sheet.xlsx', :file, 1, 'staged')"
            ),
            {"id": job_id, "file": cipher.encrypt("import_jobs", "file_enc", job_id, "file bytes")},
        )
        await session.execute(
            text("INSERT INTO import_rows (job_id, row_number, status, pii_enc) VALUES (:j, 7, 'valid', :p)"),
            {"j": job_id, "p": cipher.encrypt("import_rows", "pii_enc", f"{job_id}:7", '{"phone": "1"}')},
        )
    return national_id, wanted.id, job_id


async def _table_fingerprints(db, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every table's content, encrypted columns left out (they re-encrypt)."""
    async with db.admin_engine.connect() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " JOIN pg_attribute a ON a.attrelid = c.oid"
                    " AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT LIKE '%\\_enc'"
                    " WHERE n.nspname = :s AND c.relkind = 'r' GROUP BY c.relname"
                ),
                {"s": schema},
            )
        ).all()
        prints = {}
        for table, columns in tables:
            column_list = ", ".join(f'"{c}"' for c in columns)
            count, digest = (
                await conn.execute(
                    text(
                        f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                        f' FROM (SELECT {column_list} FROM "{schema}"."{table}") t'
                    )
                )
            ).one()
            prints[table] = (count, digest)
    return prints


@pytest.fixture
def cli_env(settings, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    return env


@pytest.fixture(scope="module")
async def seeded(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "bak")
    return fixture, *await _seed(db, settings, fixture)


async def test_round_trip_restores_every_table_beside_the_original_with_pii_readable(
    lifecycle, db, settings, seeded, tmp_path
):
    fixture, national_id, customer_id, job_id = seeded
    before = await _table_fingerprints(db, fixture.tenant.schema)
    file = tmp_path / "bak.zip"
    summary = await backup(lifecycle, fixture.slug, file)
    assert summary.schema_revision == migrations.head("tenant") and summary.rows > 0
    assert file.stat().st_mode & 0o777 == 0o600 and list(tmp_path.iterdir()) == [file]  # no draft left
    with zipfile.ZipFile(file) as archive:
        raw = b"".join(archive.read(name) for name in archive.namelist())
    assert national_id.encode() not in raw and ADDRESS.encode() not in raw  # PII stays encrypted

    copy_slug = f"copy-{secrets.token_hex(3)}"
    restored = await restore(lifecycle, file, copy_slug)
    copy = await lifecycle.get(copy_slug)
    assert copy.id != fixture.tenant.id and copy.schema == restored.schema and copy.status == "active"
    assert restored.rows == summary.rows

    after = await _table_fingerprints(db, copy.schema)
    assert after == before
    assert after["customers"][0] == 2 and after["interactions"][0] == 1 and after["audit_events"][0] > 0
    assert await _table_fingerprints(db, fixture.tenant.schema) == before  # the original untouched

    ring = master_key_ring(settings)
    admin = await principal_of(db, copy, fixture.admin_email)
    async with tenant_session(db, copy) as session:
        service = CustomerService(session, admin, cipher_source(db, ring, copy))
        found = await service.list_customers(filter=CustomerFilter(search=national_id))
        revealed = await service.reveal_pii(
            customer_id, ["national_id", "address"], purpose="backup check", channel="web"
        )
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
        chain = await verify_audit_chain(session)
    assert [c.id for c in found.customers] == [customer_id]
    assert revealed["national_id"] == national_id and revealed["address"] == ADDRESS
    assert version == migrations.head("tenant")
    assert chain.intact and chain.length == after["audit_events"][0] + 1  # copied chain + the reveal
    cipher = await cipher_for(db, ring, copy)
    async with db.admin_engine.connect() as conn:
        file_enc, pii_enc = (
            await conn.execute(
                text(
                    f'SELECT j.file_enc, r.pii_enc FROM "{copy.schema}".import_jobs j'
                    f' JOIN "{copy.schema}".import_rows r ON r.job_id = j.id WHERE j.id = :j'
                ),
                {"j": job_id},
            )
        ).one()
        registry = (
            await conn.execute(text("SELECT * FROM platform.tenants WHERE id = :i"), {"i": copy.id})
        ).one()
    assert cipher.decrypt("import_jobs", "file_enc", job_id, file_enc) == "file bytes"
    assert cipher.decrypt("import_rows", "pii_enc", f"{job_id}:7", pii_enc) == '{"phone": "1"}'
    assert registry.name == fixture.tenant.name and registry.schema_version == migrations.head("tenant")


async def test_restored_sequences_continue_after_the_copied_rows(lifecycle, db, seeded, tmp_path):
    fixture, *_ = seeded
    file = tmp_path / "seq.zip"
    await backup(lifecycle, fixture.slug, file)
    copy = await lifecycle.get((await restore(lifecycle, file, f"seq-{secrets.token_hex(3)}")).slug)
    async with db.admin_engine.connect() as conn:
        copied = await conn.scalar(text(f'SELECT max(id) FROM "{copy.schema}".pii_access_log'))
        following = await conn.scalar(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id'))"), {"t": f'"{copy.schema}".pii_access_log'}
        )
    assert copied is not None and following > copied


async def test_backup_of_a_suspended_tenant_restores_suspended(lifecycle, db, settings, tmp_path):
    fixture = await make_tenant(lifecycle, "bak-susp")
    await lifecycle.set_status(fixture.slug, "suspended")
    file = tmp_path / "suspended.zip"
    await backup(lifecycle, fixture.slug, file)
    restored = await restore(lifecycle, file, f"susp-{secrets.token_hex(3)}")
    assert restored.status == "suspended"
    assert (await lifecycle.get(restored.slug)).status == "suspended"
    await lifecycle.delete(restored.slug)  # a copy is an ordinary tenant: deleting it spares the original
    assert (await lifecycle.get(fixture.slug)).status == "suspended"
    async with db.admin_engine.connect() as conn:
        assert (
            await conn.scalar(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": restored.schema}
            )
            == 0
        )
        assert await conn.scalar(text(f'SELECT count(*) FROM "{fixture.tenant.schema}".users')) == 1


async def _tenant_count(db) -> tuple[int, int, int]:
    async with db.admin_engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM platform.tenants),"
                    " (SELECT count(*) FROM platform.tenant_keys),"
                    " (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%')"
                )
            )
        ).one()


async def test_restore_refuses_truncated_corrupt_and_foreign_files_and_writes_nothing(
    lifecycle, db, seeded, tmp_path
):
    fixture, *_ = seeded
    good = tmp_path / "good.zip"
    await backup(lifecycle, fixture.slug, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip at all")
    # A table's stream edited after the backup, the archive itself intact: the manifest's digest differs.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if "-customers." in info.filename:
                content = content.replace("王五".encode(), "王九".encode())
            target.writestr(info, content)
    # A row the server cannot read (the first id garbled): refused naming the table, not the value.
    garbled = tmp_path / "garbled.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(garbled, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if "-customers." in info.filename:
                content = b"not-a-uuid" + content[36:]
            target.writestr(info, content)
    # One byte flipped inside a compressed member: the archive's own checks catch it.
    flipped = tmp_path / "flipped.zip"
    with zipfile.ZipFile(good) as source:
        member = next(i for i in source.infolist() if "-audit_events." in i.filename)
    raw = bytearray(data)
    name_length, extra_length = struct.unpack_from("<HH", data, member.header_offset + 26)
    spot = member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    raw[spot] ^= 0xFF
    flipped.write_bytes(bytes(raw))

    counts = await _tenant_count(db)
    for bad in (truncated, garbage, tampered, garbled, flipped, tmp_path / "missing.zip"):
        with pytest.raises(BackupError) as refused:
            await restore(lifecycle, bad, f"bad-{secrets.token_hex(3)}")
        assert "not-a-uuid" not in str(refused.value) and "王" not in str(refused.value)
    with pytest.raises(BackupError, match="already exists"):
        await restore(lifecycle, good)  # its own slug: the original is still there
    assert await _tenant_count(db) == counts


async def test_restore_refuses_a_backup_from_a_newer_schema_revision(lifecycle, db, seeded, tmp_path):
    fixture, *_ = seeded
    good = tmp_path / "good.zip"
    await backup(lifecycle, fixture.slug, good)
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(newer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "manifest.json":
                manifest = json.loads(content)
                manifest["schema_revision"] = "t9999"
                content = json.dumps(manifest).encode()
            target.writestr(info, content)
    counts = await _tenant_count(db)
    with pytest.raises(BackupError, match="unknown"):
        await restore(lifecycle, newer, f"new-{secrets.token_hex(3)}")
    assert await _tenant_count(db) == counts


async def test_every_encrypted_column_of_the_tenant_schema_is_known_to_restore(db, tenant_a):
    async with db.admin_engine.connect() as conn:
        columns = {
            tuple(row)
            for row in (
                await conn.execute(
                    text(
                        "SELECT table_name, column_name FROM information_schema.columns"
                        " WHERE table_schema = :s AND data_type = 'bytea' AND column_name LIKE '%\\_enc'"
                    ),
                    {"s": tenant_a.tenant.schema},
                )
            ).all()
        }
    assert columns == {(f.table, c) for f in ENCRYPTED_FIELDS for c in f.columns}


async def test_cli_backup_and_restore_print_json_and_refuse_with_one_line(cli_env, db, seeded, tmp_path):
    fixture, national_id, *_ = seeded
    file = tmp_path / "cli.zip"
    made = run_cli(cli_env, "tenants", "backup", fixture.slug, str(file))
    assert made.returncode == 0, made.stderr
    written = json.loads(made.stdout)
    assert written["slug"] == fixture.slug and written["bytes"] == file.stat().st_size
    copy_slug = f"cli-copy-{secrets.token_hex(3)}"
    restored = run_cli(cli_env, "tenants", "restore", str(file), "--as", copy_slug)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["slug"] == copy_slug and national_id not in restored.stdout
    async with db.admin_engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM platform.tenants WHERE slug = :s"), {"s": copy_slug}
        )
    assert status == "active"

    for args in (
        ("tenants", "restore", str(file)),  # the original's slug is taken
        ("tenants", "backup", "no-such-tenant", str(tmp_path / "x.zip")),
    ):
        refused = run_cli(cli_env, *args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), refused.stderr
        assert refused.stdout == ""
    assert not (tmp_path / "x.zip").exists()
