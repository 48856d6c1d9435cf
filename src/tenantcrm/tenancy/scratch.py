"""Throwaway databases for tests and benchmarks, dropped with the cluster-wide roles they made."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tenantcrm.database import async_url


@dataclass(frozen=True)
class ScratchDatabase:
    url: str
    """Admin URL of the new database."""
    app_role: str
    """An application role name of this database alone (roles are shared by the whole server)."""


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "tcrm_scratch") -> AsyncIterator[ScratchDatabase]:
    """A new database on `server_url`; afterwards it is dropped, then every tenant role granted
    to its app role, then that role."""
    suffix = secrets.token_hex(4)
    name, app_role = f"{prefix}_{suffix}", f"{prefix}_app_{suffix}"
    server = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        yield ScratchDatabase(url=url, app_role=app_role)
    finally:
        async with server.connect() as conn:
            await drop_database(conn, name, app_role)
        await server.dispose()


async def drop_database(conn: AsyncConnection, name: str, app_role: str) -> None:
    """Drop a database, then every tenant role granted to its app role, then that role (on an
    AUTOCOMMIT connection to another database of the server)."""
    await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await _drop_roles(conn, app_role)


async def _drop_roles(conn: AsyncConnection, app_role: str) -> None:
    tenant_roles = (
        await conn.scalars(
            text(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles a ON a.oid = m.member WHERE a.rolname = :app"
            ),
            {"app": app_role},
        )
    ).all()
    for role in [*tenant_roles, app_role]:
        await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
