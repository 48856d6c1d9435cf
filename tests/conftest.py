"""Shared fixtures: a fresh database per run, two tenants, users, tokens and clients."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from hypothesis import settings as settings_profiles

from tenantcrm.auth.service import create_api_token, find_user_by_email, upsert_user
from tenantcrm.database import Database
from tenantcrm.settings import REPO_ROOT, Settings
from tenantcrm.tenancy.provisioning import TenantLifecycle, bootstrap
from tenantcrm.tenancy.scratch import ScratchDatabase, scratch_database
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import Tenant
from tests.database_server import postgres_server

PASSWORD = "correct horse battery"

# CI explores the same examples every run (a red build must mean a change broke something);
# local runs keep searching with fresh random examples.
settings_profiles.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings_profiles.load_profile("ci")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
async def scratch(server_url: str) -> AsyncIterator[ScratchDatabase]:
    """A database of this run alone, dropped afterwards with the roles it created."""
    async with scratch_database(server_url, prefix="tcrm_test") as database:
        yield database


@pytest.fixture(scope="session")
def database_url(scratch: ScratchDatabase) -> str:
    return scratch.url


@pytest.fixture(scope="session")
def settings(scratch: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=scratch.url,
        app_role=scratch.app_role,
        data_dir=tmp_path_factory.mktemp("data"),
        environment="test",
        secret_key="test-secret-key-" + "x" * 32,
        secure_cookies=False,
        graphql_introspection=True,
        web_dir=REPO_ROOT / "web",
    )


@pytest.fixture(scope="session")
async def db(settings: Settings, database_url: str) -> AsyncIterator[Database]:
    database = Database.connect(settings, database_url)
    await bootstrap(database, settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def lifecycle(db: Database, settings: Settings) -> TenantLifecycle:
    return TenantLifecycle(db, settings)


@dataclass(frozen=True)
class TenantFixture:
    tenant: Tenant
    admin_email: str
    password: str

    @property
    def slug(self) -> str:
        return self.tenant.slug


async def make_tenant(lifecycle: TenantLifecycle, prefix: str) -> TenantFixture:
    slug = f"{prefix}-{secrets.token_hex(3)}"
    created = await lifecycle.create(
        slug, name=f"{prefix.title()} 小贷", admin_email=f"admin@{slug}.example", admin_password=PASSWORD
    )
    return TenantFixture(await lifecycle.get(slug), created.admin_email, PASSWORD)


@pytest.fixture(scope="session")
async def tenant_a(lifecycle: TenantLifecycle) -> TenantFixture:
    return await make_tenant(lifecycle, "alpha")


@pytest.fixture(scope="session")
async def tenant_b(lifecycle: TenantLifecycle) -> TenantFixture:
    return await make_tenant(lifecycle, "beta")


@pytest.fixture
async def fresh_tenant(lifecycle: TenantLifecycle) -> TenantFixture:
    """A tenant of one test alone, for tests that suspend, delete or break it."""
    return await make_tenant(lifecycle, "solo")


async def add_user(db: Database, tenant: Tenant, role: str, email: str | None = None) -> str:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    async with tenant_session(db, tenant) as session:
        await upsert_user(session, email=email, password=PASSWORD, role=role)
    return email


async def api_token_for(db: Database, tenant: Tenant, email: str) -> str:
    async with tenant_session(db, tenant) as session:
        user = await find_user_by_email(session, email)
        assert user is not None
        return await create_api_token(session, tenant, user, "test")


@pytest.fixture(scope="session")
async def token_a(db: Database, tenant_a: TenantFixture) -> str:
    return await api_token_for(db, tenant_a.tenant, tenant_a.admin_email)


@pytest.fixture(scope="session")
async def token_b(db: Database, tenant_b: TenantFixture) -> str:
    return await api_token_for(db, tenant_b.tenant, tenant_b.admin_email)


@pytest.fixture(scope="session")
def app(settings: Settings, database_url: str, db: Database):
    from tenantcrm.app import create_app

    application = create_app(settings, database_url, database=db)
    # Served in the test's own event loop (the engines' loop), so no lifespan runs: set its state.
    application.state.db = db
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in-process; it keeps cookies like a browser."""
    # A client address of its own, so sign-in throttling by address never spills across tests.
    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as test_client:
        yield test_client


def repo_path(*parts: str) -> Path:
    return REPO_ROOT.joinpath(*parts)


async def principal_of(db: Database, tenant: Tenant, email: str):
    """The principal a sign-in by `email` would produce."""
    from tenantcrm.auth.service import principal_for_user

    async with tenant_session(db, tenant) as session:
        user = await find_user_by_email(session, email)
        assert user is not None
        principal = await principal_for_user(session, tenant, user.id)
    assert principal is not None
    return principal


async def web_sign_in(
    client: httpx.AsyncClient, slug: str, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in through the real form: fetch the page for its CSRF cookie, then post."""
    await client.get(f"/t/{slug}/login")
    return await client.post(
        f"/t/{slug}/login",
        data={"email": email, "password": password, "_csrf_token": client.cookies["csrftoken"]},
        follow_redirects=False,
    )


SERVER_START_SECONDS = 30


@pytest.fixture(scope="session")
def live_server(settings: Settings, database_url: str, db: Database) -> Iterator[str]:
    """The app served by uvicorn in a background thread; yields its base URL.

    Depends on `db` only so the schema is bootstrapped before the app's own lifespan runs
    (the bootstrap is idempotent and serialised by an advisory lock either way).
    """
    from tenantcrm.app import create_app

    app = create_app(settings, database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port meanwhile
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit when the lifespan fails to start
            failure.append(exc)

    thread = threading.Thread(target=serve, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(5)
            sock.close()
            raise RuntimeError(f"the live server did not start: {failure or 'timeout'}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
