"""Database engines: the admin connection for DDL and the application role's pool."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from tenantcrm.settings import Settings


def async_url(url: str | URL) -> URL:
    """The same URL driven by asyncpg."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+asyncpg")


def app_url(settings: Settings, admin_url: str) -> URL:
    """The application role's URL: explicit, or the admin URL with the app role as user."""
    if settings.app_database_url:
        return async_url(settings.app_database_url)
    return async_url(admin_url).set(username=settings.app_role, password=settings.app_role_password)


@dataclass
class Database:
    """Both engines of one process. Tenant work uses `app_engine` through tenancy only."""

    admin_url: str
    admin_engine: AsyncEngine
    app_engine: AsyncEngine
    app_sessions: async_sessionmaker

    @classmethod
    def connect(cls, settings: Settings, admin_url: str) -> Database:
        admin_engine = create_async_engine(async_url(admin_url), pool_size=2, max_overflow=4)
        app_engine = create_async_engine(
            app_url(settings, admin_url),
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_pre_ping=False,
        )
        return cls(
            admin_url=admin_url,
            admin_engine=admin_engine,
            app_engine=app_engine,
            app_sessions=async_sessionmaker(app_engine, expire_on_commit=False),
        )

    async def dispose(self) -> None:
        await self.app_engine.dispose()
        await self.admin_engine.dispose()
