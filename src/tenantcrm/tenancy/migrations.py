"""Alembic runs for the platform schema and for one tenant schema at a time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.models import PLATFORM_SCHEMA
from tenantcrm.tenancy.tenant import schema_for

MIGRATIONS_DIR: Path = REPO_ROOT / "migrations"
# Tenant schemas holding Alembic's table, among those asked about (one statement for all).
_WITH_VERSION_TABLE = text(
    "SELECT s FROM unnest(CAST(:schemas AS text[])) AS s"
    " WHERE to_regclass(format('%I.alembic_version', s)) IS NOT NULL"
)
_VERSIONS_PER_STATEMENT = 500


def _config(env: str, extra_versions: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR / env))
    if extra_versions is not None:
        # Alembic then reads only the listed folders: the environment's own comes first.
        config.set_main_option("path_separator", "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join((str(MIGRATIONS_DIR / env / "versions"), str(extra_versions))),
        )
    return config


class Migrator:
    """One environment's revisions, read once and used for every schema of a run.

    Building Alembic's ScriptDirectory imports and compiles every revision file; per tenant that
    was most of a one-revision migration's time. Running the migration through our own
    EnvironmentContext also skips loading env.py per schema (env.py stays for the alembic command).
    """

    def __init__(self, env: str, extra_versions: Path | None = None) -> None:
        self.env = env
        self.extra_versions = extra_versions
        self.script = ScriptDirectory.from_config(_config(env, extra_versions))
        head = self.script.get_current_head()
        assert head is not None
        self.head: str = head

    def upgrade(self, connection: Connection, schema: str, revision: str = "head") -> None:
        """Bring `schema` to `revision` inside the connection's transaction."""
        self._run(connection, schema, revision, lambda rev, _: self.script._upgrade_revs(revision, rev))

    def downgrade(self, connection: Connection, schema: str, revision: str) -> None:
        """Take `schema` back to `revision` (e.g. "-1") inside the connection's transaction."""
        self._run(connection, schema, revision, lambda rev, _: self.script._downgrade_revs(revision, rev))

    def older_revisions(self) -> frozenset[str]:
        return frozenset(r.revision for r in self.script.walk_revisions() if r.revision != self.head)

    def _run(self, connection: Connection, schema: str, revision: str, fn: Callable[..., Any]) -> None:
        config = _config(self.env, self.extra_versions)  # cheap: options only, no files read
        config.attributes["connection"] = connection
        config.attributes["schema"] = schema
        with EnvironmentContext(config, self.script, fn=fn, destination_rev=revision) as context:
            configure_from_env(context)


@cache
def migrator(env: str) -> Migrator:
    """The migrator of an environment ("platform" or "tenant") as this code ships it."""
    return Migrator(env)


def head(env: str) -> str:
    """The newest revision of an environment ("platform" or "tenant")."""
    return migrator(env).head


def configure_from_env(context: EnvironmentContext) -> None:
    """Called by each env.py and by Migrator: bind Alembic to the connection and schema we were handed."""
    connection: Connection = context.config.attributes["connection"]
    schema: str = context.config.attributes["schema"]
    # Migrations run unqualified DDL inside the target schema, as the admin role.
    connection.execute(text("SELECT set_config('search_path', :schema, true)"), {"schema": schema})
    context.configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


def _upgrade(connection: Connection, env: str, schema: str, revision: str) -> None:
    migrator(env).upgrade(connection, schema, revision)


async def upgrade_platform(connection: AsyncConnection) -> None:
    """Bring the platform schema to head inside the caller's transaction."""
    await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PLATFORM_SCHEMA}"))
    await connection.run_sync(_upgrade, "platform", PLATFORM_SCHEMA, "head")


async def upgrade_tenant(
    connection: AsyncConnection, schema: str, revision: str = "head", using: Migrator | None = None
) -> str:
    """Bring one tenant schema to `revision` inside the caller's transaction; return it."""
    tenant_migrator = using or migrator("tenant")
    await connection.run_sync(tenant_migrator.upgrade, schema, revision)
    return tenant_migrator.head if revision == "head" else revision


async def tenant_version(connection: AsyncConnection, schema: str) -> str | None:
    """The revision recorded inside a tenant schema, or None before its first migration."""
    exists = await connection.scalar(
        text("SELECT to_regclass(:table) IS NOT NULL"), {"table": f"{schema}.alembic_version"}
    )
    if not exists:
        return None
    # schema comes from the registry and matches t_[0-9a-f]{16}: safe to quote in.
    return await connection.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))  # noqa: S608


async def tenant_versions(connection: AsyncConnection, tenant_ids: Iterable[str]) -> dict[str, str | None]:
    """The revision recorded inside each tenant's schema, by tenant id, in two or three statements
    for any number of tenants (None: never migrated, or no schema at all).

    Read from the schemas themselves, not the registry's mirror, which a restore or a hand-made
    repair may have left behind.
    """
    schemas = {schema_for(tenant_id): tenant_id for tenant_id in tenant_ids}  # checks each id
    versions: dict[str, str | None] = dict.fromkeys(schemas.values())
    present: Sequence[str] = (
        await connection.scalars(
            _WITH_VERSION_TABLE.bindparams(bindparam("schemas")), {"schemas": list(schemas)}
        )
    ).all()
    for start in range(0, len(present), _VERSIONS_PER_STATEMENT):
        chunk = present[start : start + _VERSIONS_PER_STATEMENT]
        # Each name is t_ and 16 hex digits (schema_for checked it): safe to quote into the SQL.
        union = " UNION ALL ".join(
            f"SELECT '{schema}' AS s, version_num FROM \"{schema}\".alembic_version"  # noqa: S608
            for schema in chunk
        )
        for schema, version in await connection.execute(text(union)):
            versions[schemas[schema]] = version
    return versions
