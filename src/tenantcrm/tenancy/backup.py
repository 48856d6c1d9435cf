"""Per-tenant backup to one zip of COPY streams, and restore of it into a new tenant (ADR 0009)."""

from __future__ import annotations

import base64
import graphlib
import hashlib
import json
import os
import secrets
import zipfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantcrm.pii.cipher import PiiDecryptionError, TenantCipher, version_of
from tenantcrm.pii.keys import MasterKeyError, MasterKeyRing
from tenantcrm.tenancy import migrations
from tenantcrm.tenancy.models import TenantRow
from tenantcrm.tenancy.provisioning import (
    ProvisioningError,
    TenantLifecycle,
    _grant_tenant_privileges,
    _quote,
)
from tenantcrm.tenancy.tenant import ACTIVE, PROVISIONING, SLUG_PATTERN, SUSPENDED, schema_for

FORMAT = "tenantcrm-tenant-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_BYTES = 1 << 20
REENCRYPT_BATCH = 500


MANIFEST_MAX_BYTES = 16 * 1024 * 1024  # names, revisions, wrapped keys and table digests


class BackupError(ProvisioningError):
    """A backup or restore that cannot be carried out; one line, naming no value or key."""


@dataclass(frozen=True)
class EncryptedField:
    """Encrypted columns of one table and the row id their associated data binds them to."""

    table: str
    key: tuple[str, ...]
    """Primary-key columns, to write a row back."""
    row_id: str
    """SQL expression of the row id in each field's associated data (see the writing service)."""
    columns: tuple[str, ...]


# Every encrypted column of the tenant schema. Restore refuses a schema holding an `_enc` column
# not listed here, so a new encrypted column cannot silently restore undecryptable.
ENCRYPTED_FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField(
        "customers", ("id",), "id::text", ("national_id_enc", "phone_enc", "email_enc", "address_enc")
    ),
    EncryptedField("import_jobs", ("id",), "id::text", ("file_enc",)),
    EncryptedField(
        "import_rows", ("job_id", "row_number"), "job_id::text || ':' || row_number::text", ("pii_enc",)
    ),
)


@dataclass(frozen=True)
class BackupSummary:
    slug: str
    file: str
    schema_revision: str
    tables: int
    rows: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class RestoreSummary:
    slug: str
    schema: str
    status: str
    restored_from: str
    backup_revision: str
    schema_version: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _ident(name: str) -> str:
    """A catalog identifier quoted for SQL (names come from pg_catalog, not from input)."""
    return '"' + name.replace('"', '""') + '"'


async def _asyncpg(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _tables(conn: AsyncConnection, schema: str) -> list[tuple[str, list[str]]]:
    """Tables of the schema (partitions through their parent) with their stored columns in order."""
    rows = (
        await conn.execute(
            text(
                "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) AS columns"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                "  AND a.attgenerated = ''"
                " WHERE n.nspname = :s AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                "  AND c.relname <> 'alembic_version'"
                " GROUP BY c.relname ORDER BY c.relname"
            ),
            {"s": schema},
        )
    ).all()
    return [(r.relname, list(r.columns)) for r in rows]


async def _load_order(conn: AsyncConnection, schema: str, tables: list[str]) -> list[str]:
    """Referenced tables before the tables referring to them."""
    edges = (
        await conn.execute(
            text(
                "SELECT src.relname AS src, dst.relname AS dst FROM pg_constraint c"
                " JOIN pg_class src ON src.oid = c.conrelid JOIN pg_namespace n ON n.oid = src.relnamespace"
                " JOIN pg_class dst ON dst.oid = c.confrelid"
                " WHERE c.contype = 'f' AND n.nspname = :s"
            ),
            {"s": schema},
        )
    ).all()
    graph: dict[str, set[str]] = {t: set() for t in tables}
    for edge in edges:
        if edge.src != edge.dst and edge.src in graph:  # a table referring to itself loads in one COPY
            graph[edge.src].add(edge.dst)
    try:
        return [t for t in graphlib.TopologicalSorter(graph).static_order() if t in graph]
    except graphlib.CycleError as exc:
        raise BackupError(f"foreign keys between tables form a cycle: {exc.args[1]}") from None


async def backup(lifecycle: TenantLifecycle, slug: str, path: Path) -> BackupSummary:
    """Write the tenant's registry row, wrapped keys, revision and every table to `path`.

    One repeatable-read snapshot, so the file is consistent while the tenant keeps working. The
    file appears under its name only when complete.
    """
    tenant = await lifecycle.get(slug)
    if tenant.status not in (ACTIVE, SUSPENDED):
        raise BackupError(f"tenant {slug!r} is {tenant.status}")
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    total_rows = 0
    try:
        engine = lifecycle.db.admin_engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        async with engine.connect() as conn, conn.begin():
            registry = (
                await conn.execute(text("SELECT * FROM platform.tenants WHERE id = :i"), {"i": tenant.id})
            ).one()
            revision = await migrations.tenant_version(conn, tenant.schema)
            if revision is None:
                raise BackupError(f"tenant {slug!r} has no migrated schema")
            keys = (
                await conn.execute(
                    text(
                        "SELECT version, wrapped_data_key, wrapped_index_key, master_key_id, created_at,"
                        " retired_at FROM platform.tenant_keys WHERE tenant_id = :i ORDER BY version"
                    ),
                    {"i": tenant.id},
                )
            ).all()
            if not keys:
                raise BackupError(f"tenant {slug!r} has no data keys")
            sequences = (
                await conn.execute(
                    text(
                        "SELECT sequencename, last_value FROM pg_sequences"
                        " WHERE schemaname = :s ORDER BY sequencename"
                    ),
                    {"s": tenant.schema},
                )
            ).all()
            raw = await _asyncpg(conn)
            table_entries = []
            with (
                _private_file(draft) as handle,
                zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive,
            ):
                for number, (table, columns) in enumerate(await _tables(conn, tenant.schema)):
                    member = f"tables/{number:04d}-{table}.copy"
                    digest = hashlib.sha256()
                    with archive.open(member, "w", force_zip64=True) as sink:

                        async def write(chunk: bytes, sink: Any = sink, digest: Any = digest) -> None:
                            digest.update(chunk)
                            sink.write(chunk)

                        column_list = ", ".join(_ident(c) for c in columns)
                        status = await raw.copy_from_query(
                            f"SELECT {column_list} FROM {_ident(tenant.schema)}.{_ident(table)}",  # noqa: S608
                            output=write,
                            format="text",
                        )
                    rows = int(status.split()[-1])
                    total_rows += rows
                    table_entries.append(
                        {
                            "name": table,
                            "columns": columns,
                            "rows": rows,
                            "member": member,
                            "sha256": digest.hexdigest(),
                        }
                    )
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "created_at": datetime.now(UTC).isoformat(),
                    "tenant": {
                        "id": registry.id,
                        "slug": registry.slug,
                        "name": registry.name,
                        "plan": registry.plan,
                        "status": registry.status,
                        "max_users": registry.max_users,
                        "max_customers": registry.max_customers,
                        "max_storage_mb": registry.max_storage_mb,
                        "created_at": registry.created_at.isoformat(),
                    },
                    "schema_revision": revision,
                    # Still wrapped by the master key ring: the file holds no usable key.
                    "keys": [
                        {
                            "version": k.version,
                            "wrapped_data_key": base64.b64encode(k.wrapped_data_key).decode(),
                            "wrapped_index_key": base64.b64encode(k.wrapped_index_key).decode(),
                            "master_key_id": k.master_key_id,
                            "created_at": k.created_at.isoformat(),
                            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
                        }
                        for k in keys
                    ],
                    "sequences": [{"name": s.sequencename, "last_value": s.last_value} for s in sequences],
                    "tables": table_entries,
                }
                archive.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return BackupSummary(
        slug=slug,
        file=str(path),
        schema_revision=revision,
        tables=len(table_entries),
        rows=total_rows,
        bytes=_size_of(path),
    )


def _private_file(path: Path) -> BinaryIO:
    """Readable by the operator's account alone: names and notes in the file are clear text."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _size_of(path: Path) -> int:
    return path.stat().st_size


def _open_backup(path: Path) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BackupError(f"no such file {str(path)!r}") from None
    except (zipfile.BadZipFile, OSError):
        raise BackupError("not a tenantcrm backup, or the file is truncated or corrupt") from None
    try:
        if archive.getinfo(MANIFEST).file_size > MANIFEST_MAX_BYTES:  # read whole: refuse a zip bomb
            raise ValueError("manifest too large")
        manifest = json.loads(archive.read(MANIFEST))
    except (KeyError, zipfile.BadZipFile, zlib.error, ValueError, OSError):
        archive.close()
        raise BackupError("the backup's manifest is missing or corrupt") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        archive.close()
        raise BackupError("not a tenantcrm tenant backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        archive.close()
        raise BackupError(f"backup format version {manifest.get('format_version')!r} is not supported")
    return archive, manifest


def _quota(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**12 else None


def _known_revision(revision: str) -> None:
    script = ScriptDirectory(str(migrations.MIGRATIONS_DIR / "tenant"))
    try:
        found = script.get_revision(revision)
    except (AlembicCommandError, RevisionError):
        found = None
    if found is None:
        raise BackupError(f"the backup's schema revision {revision!r} is unknown to this tenantcrm (newer?)")


def _unwrapped_keys(ring: MasterKeyRing, tenant_id: str, keys: list[dict[str, Any]]) -> tuple[dict, bytes]:
    try:
        data_keys = {
            k["version"]: ring.unwrap(
                base64.b64decode(k["wrapped_data_key"]), k["master_key_id"], tenant_id, k["version"]
            )
            for k in keys
        }
        first = keys[0]
        index_key = ring.unwrap(
            base64.b64decode(first["wrapped_index_key"]), first["master_key_id"], tenant_id, first["version"]
        )
    except MasterKeyError as exc:
        raise BackupError(f"the backup's keys do not unwrap with this master key ring: {exc}") from None
    except (KeyError, IndexError, ValueError, TypeError):
        raise BackupError("the backup's key rows are malformed") from None
    return data_keys, index_key


async def restore(lifecycle: TenantLifecycle, path: Path, as_slug: str | None = None) -> RestoreSummary:
    """Restore a backup into a new tenant (new id, schema and role) named `as_slug` or its own slug.

    One transaction: the schema migrated to the backup's revision, every table loaded, its PII
    moved to the new tenant id, then migrated to head and activated; any failure leaves nothing.
    """
    ring = lifecycle.ring()
    archive, manifest = _open_backup(path)
    with archive:
        try:
            source = manifest["tenant"]
            revision = manifest["schema_revision"]
            tables = {t["name"]: t for t in manifest["tables"]}
            keys = manifest["keys"]
            status = source["status"]
        except (KeyError, TypeError):
            raise BackupError("the backup's manifest is incomplete") from None
        slug = (as_slug or source["slug"]).strip()
        if not SLUG_PATTERN.fullmatch(slug):
            raise BackupError(f"invalid slug {slug!r}")
        if status not in (ACTIVE, SUSPENDED):
            raise BackupError(f"the backup's tenant status {status!r} cannot be restored")
        _known_revision(revision)
        data_keys, index_key = _unwrapped_keys(ring, source["id"], keys)
        if await _slug_taken(lifecycle, slug):
            raise BackupError(f"tenant {slug!r} already exists")

        tenant_id = secrets.token_hex(8)
        schema = schema_for(tenant_id)
        role, app_role = _quote(schema), _quote(lifecycle.settings.app_role)
        rows_loaded = 0
        try:
            async with lifecycle.db.admin_engine.begin() as conn:
                await conn.execute(
                    TenantRow.__table__.insert().values(
                        id=tenant_id,
                        slug=slug,
                        name=source["name"],
                        plan=source.get("plan") or "standard",
                        # The copy keeps its source's quotas (older backups have none: no limit).
                        **{
                            q: _quota(source.get(q)) for q in ("max_users", "max_customers", "max_storage_mb")
                        },
                        status=PROVISIONING,
                        schema_name=schema,
                    )
                )
                await conn.execute(text(f"CREATE ROLE {role} NOLOGIN"))
                await conn.execute(text(f"GRANT {role} TO {app_role}"))
                await conn.execute(text(f"CREATE SCHEMA {role}"))
                await migrations.upgrade_tenant(conn, schema, revision)
                existing = dict(await _tables(conn, schema))
                _check_encrypted_columns_known(existing)
                if set(existing) != set(tables):
                    raise BackupError("the backup's tables do not match its schema revision")
                # Rows the migrations seeded (roles, the audit chain head...) are in the backup too.
                every_table = ", ".join(f"{_ident(schema)}.{_ident(t)}" for t in existing)
                await conn.execute(text(f"TRUNCATE {every_table}"))
                raw = await _asyncpg(conn)
                for table in await _load_order(conn, schema, list(existing)):
                    rows_loaded += await _load_table(raw, archive, schema, tables[table])
                for sequence in manifest.get("sequences", []):
                    if sequence["last_value"] is not None:
                        await conn.execute(
                            text("SELECT setval(:seq, :value, true)"),
                            {
                                "seq": f"{_ident(schema)}.{_ident(sequence['name'])}",
                                "value": sequence["last_value"],
                            },
                        )
                await _insert_keys(conn, ring, tenant_id, keys, data_keys, index_key)
                await _move_pii(conn, schema, source["id"], tenant_id, data_keys, index_key)
                version = await migrations.upgrade_tenant(conn, schema)
                await _grant_tenant_privileges(conn, schema)
                await conn.execute(
                    update(TenantRow)
                    .where(TenantRow.id == tenant_id)
                    .values(status=status, schema_version=version, updated_at=text("now()"))
                )
        except BackupError:
            raise
        except (KeyError, TypeError, ValueError):
            raise BackupError("the backup's manifest is incomplete or malformed") from None
        except PiiDecryptionError as exc:
            raise BackupError(f"the backup's PII does not decrypt with its keys: {exc}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise BackupError("the backup file is corrupt (a table does not read back whole)") from None
    return RestoreSummary(
        slug=slug,
        schema=schema,
        status=status,
        restored_from=source["slug"],
        backup_revision=revision,
        schema_version=version,
        rows=rows_loaded,
    )


async def _slug_taken(lifecycle: TenantLifecycle, slug: str) -> bool:
    async with lifecycle.db.admin_engine.connect() as conn:
        return bool(await conn.scalar(text("SELECT 1 FROM platform.tenants WHERE slug = :s"), {"s": slug}))


def _check_encrypted_columns_known(tables: dict[str, list[str]]) -> None:
    known = {(f.table, c) for f in ENCRYPTED_FIELDS for c in f.columns}
    unknown = sorted(
        f"{t}.{c}"
        for t, columns in tables.items()
        for c in columns
        if c.endswith("_enc") and (t, c) not in known
    )
    if unknown:
        raise BackupError(f"encrypted columns unknown to restore: {', '.join(unknown)}")


async def _load_table(raw: Any, archive: zipfile.ZipFile, schema: str, entry: dict[str, Any]) -> int:
    digest = hashlib.sha256()

    async def chunks() -> AsyncIterator[bytes]:
        with archive.open(entry["member"]) as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
                yield chunk

    try:
        status = await raw.copy_to_table(
            entry["name"], source=chunks(), columns=entry["columns"], schema_name=schema, format="text"
        )
    except KeyError:
        raise BackupError(f"the backup lacks table {entry['name']!r}") from None
    except asyncpg.PostgresError as exc:
        # The server's message may quote a row's value: name the table and the error class only.
        raise BackupError(f"table {entry['name']!r} does not load (SQLSTATE {exc.sqlstate})") from None
    rows = int(status.split()[-1])
    if digest.hexdigest() != entry["sha256"] or rows != entry["rows"]:
        raise BackupError(f"table {entry['name']!r} does not match the backup's manifest")
    return rows


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def _insert_keys(
    conn: AsyncConnection,
    ring: MasterKeyRing,
    tenant_id: str,
    keys: list[dict[str, Any]],
    data_keys: dict[int, bytes],
    index_key: bytes,
) -> None:
    """The backup's key versions, rewrapped for the new tenant id (wrapping binds the tenant id)."""
    for k in keys:
        version = k["version"]
        await conn.execute(
            text(
                "INSERT INTO platform.tenant_keys (tenant_id, version, wrapped_data_key, wrapped_index_key,"
                " master_key_id, created_at, retired_at)"
                " VALUES (:t, :v, :d, :i, :m, :c, :r)"
            ),
            {
                "t": tenant_id,
                "v": version,
                "d": ring.wrap(data_keys[version], tenant_id, version),
                "i": ring.wrap(index_key, tenant_id, version),
                "m": ring.key_id,
                "c": _timestamp(k.get("created_at")) or datetime.now(UTC),
                "r": _timestamp(k.get("retired_at")),
            },
        )


async def _move_pii(
    conn: AsyncConnection,
    schema: str,
    old_id: str,
    new_id: str,
    data_keys: dict[int, bytes],
    index_key: bytes,
) -> None:
    """Re-encrypt every field from the old tenant id's associated data to the new one's.

    Same keys and same key version per field, so pii_key_version stays true; the index key is
    kept, so blind indexes (search by identity number) stay valid without the clear values.
    """
    newest = max(data_keys)
    old = TenantCipher.build(old_id, data_keys, newest, index_key)
    new = {v: TenantCipher.build(new_id, data_keys, v, index_key) for v in data_keys}
    for spec in ENCRYPTED_FIELDS:
        key_list = ", ".join(spec.key)
        columns = ", ".join(spec.columns)
        table = f"{_ident(schema)}.{_ident(spec.table)}"
        after = ""
        assignments = ", ".join(f"{c} = :{c}" for c in spec.columns)
        match = " AND ".join(f"{k} = :k_{k}" for k in spec.key)
        write = text(f"UPDATE {table} SET {assignments} WHERE {match}")  # noqa: S608
        last: dict[str, Any] | None = None
        while True:
            after = f"WHERE ({key_list}) > ({', '.join(f':k_{k}' for k in spec.key)})" if last else ""
            # Identifiers come from ENCRYPTED_FIELDS and the catalog, never from input.
            pick = text(
                f"SELECT {key_list}, {spec.row_id} AS row_id, {columns} FROM {table} {after}"  # noqa: S608
                f" ORDER BY {key_list} LIMIT {REENCRYPT_BATCH}"
            )
            rows = (await conn.execute(pick, last or {})).all()
            if not rows:
                break
            updates = []
            for row in rows:
                values = {f"k_{k}": row._mapping[k] for k in spec.key}
                for column in spec.columns:
                    blob = row._mapping[column]
                    if blob is None:
                        values[column] = None
                        continue
                    plaintext = old.decrypt(spec.table, column, row.row_id, blob)
                    values[column] = new[version_of(bytes(blob))].encrypt(
                        spec.table, column, row.row_id, plaintext
                    )
                updates.append(values)
            await conn.execute(write, updates)
            last = {f"k_{k}": rows[-1]._mapping[k] for k in spec.key}
