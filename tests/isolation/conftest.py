"""Fixtures of the isolation suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from tenantcrm.database import Database, app_url
from tenantcrm.settings import Settings


@pytest.fixture
async def one_connection_db(db: Database, settings: Settings, database_url: str) -> AsyncIterator[Database]:
    """The application's engines, except that the app role's pool holds exactly one connection.

    Every session then runs on the same server connection, so anything a tenant session
    leaves behind on it would show up in the next one. A leaked connection fails fast
    (pool_timeout) instead of hanging the suite.
    """
    engine = create_async_engine(app_url(settings, database_url), pool_size=1, max_overflow=0, pool_timeout=5)
    yield Database(
        admin_url=database_url,
        admin_engine=db.admin_engine,
        app_engine=engine,
        app_sessions=async_sessionmaker(engine, expire_on_commit=False),
    )
    await engine.dispose()
