"""Apps of one test each, built from the session settings with a few changed."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tenantcrm.app import create_app


@pytest.fixture
def ops_app(
    settings, database_url, db
) -> Callable[..., AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]]:
    """`async with ops_app(rate_limit_user=3) as (app, client)`: a fresh app and a client for it."""

    @asynccontextmanager
    async def make(**changes: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
        app = create_app(replace(settings, **changes), database_url, database=db)
        app.state.db = db
        address = f"203.0.113.{secrets.randbelow(250) + 1}"
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client

    return make
