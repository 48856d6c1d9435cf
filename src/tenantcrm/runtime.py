"""Open the database a command needs: the configured server, or the embedded one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tenantcrm.database import Database
from tenantcrm.embedded import start_embedded_server
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import bootstrap


def admin_url_for(settings: Settings) -> str:
    return settings.database_url or start_embedded_server(settings.data_dir)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """Connect both engines and make sure the platform schema and app role are current."""
    db = Database.connect(settings, admin_url_for(settings))
    try:
        await bootstrap(db, settings)
        yield db
    finally:
        await db.dispose()
