"""Alembic runs for the platform schema and for one tenant schema at a time."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.models import PLATFORM_SCHEMA

MIGRATIONS_DIR: Path = REPO_ROOT / "migrations"


def _config(env: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR / env))
    return config


@cache
def head(env: str) -> str:
    """The newest revision of an environment ("platform" or "tenant")."""
    revision = ScriptDirectory.from_config(_config(env)).get_current_head()
    assert revision is not None
    return revision


def configure_from_env(context: EnvironmentContext) -> None:
    """Called by each env.py: bind Alembic to the connection and schema we were handed."""
    connection: Connection = context.config.attributes["connection"]
    schema: str = context.config.attributes["schema"]
    # Migrations run unqualified DDL inside the target schema, as the admin role.
    connection.execute(text("SELECT set_config('search_path', :schema, true)"), {"schema": schema})
    context.configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


def _upgrade(connection: Connection, env: str, schema: str, revision: str) -> None:
    config = _config(env)
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, revision)


async def upgrade_platform(connection: AsyncConnection) -> None:
    """Bring the platform schema to head inside the caller's transaction."""
    await connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PLATFORM_SCHEMA}"))
    await connection.run_sync(_upgrade, "platform", PLATFORM_SCHEMA, "head")


async def upgrade_tenant(connection: AsyncConnection, schema: str, revision: str = "head") -> str:
    """Bring one tenant schema to `revision` inside the caller's transaction; return it."""
    await connection.run_sync(_upgrade, "tenant", schema, revision)
    return head("tenant") if revision == "head" else revision


async def tenant_version(connection: AsyncConnection, schema: str) -> str | None:
    """The revision recorded inside a tenant schema, or None before its first migration."""
    exists = await connection.scalar(
        text("SELECT to_regclass(:table) IS NOT NULL"), {"table": f"{schema}.alembic_version"}
    )
    if not exists:
        return None
    # schema comes from the registry and matches t_[0-9a-f]{16}: safe to quote in.
    return await connection.scalar(text(f'SELECT version_num FROM "{schema}".alembic_version'))  # noqa: S608
