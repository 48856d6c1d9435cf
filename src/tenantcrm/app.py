"""The Litestar application: pages, GraphQL, health, and the database lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import msgspec
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, MediaType, Request, Response, get
from litestar.background_tasks import BackgroundTasks
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import Dependencies, Message, Scope
from strawberry.litestar import make_graphql_controller

from tenantcrm.database import Database
from tenantcrm.graphql.context import graphql_context
from tenantcrm.graphql.schema import build_schema
from tenantcrm.jobs.worker import serve_jobs
from tenantcrm.observability.limits import LIMIT_HANDLERS, RateLimiter
from tenantcrm.observability.metrics import AppMetrics, metrics
from tenantcrm.observability.readiness import Readiness, readyz
from tenantcrm.observability.requests import RequestObserver, log_unhandled
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import bootstrap
from tenantcrm.web.auth import LanguagePages, SignInController, set_language
from tenantcrm.web.collateral import CollateralPages
from tenantcrm.web.complaints import ComplaintPages
from tenantcrm.web.console import CONSOLE_EXCEPTION_HANDLERS, ConsolePages, ConsoleSignIn
from tenantcrm.web.contacts import ContactPages
from tenantcrm.web.customers import CustomerPages
from tenantcrm.web.dashboard import DashboardPages
from tenantcrm.web.developers import DeveloperPages
from tenantcrm.web.errors import EXCEPTION_HANDLERS
from tenantcrm.web.exports import ExportPages
from tenantcrm.web.imports import ImportPages
from tenantcrm.web.loans import LoanPages
from tenantcrm.web.rendering import page
from tenantcrm.web.retention import RetentionPages
from tenantcrm.web.risk import RiskPages
from tenantcrm.web.saved_views import SavedViewPages
from tenantcrm.web.scope import provide_web_scope
from tenantcrm.web.segments import SegmentPages
from tenantcrm.web.settings import SettingsPages
from tenantcrm.web.support import SupportPages

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@get("/healthz", media_type=MediaType.JSON, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/", sync_to_thread=False)
def index(request: Request) -> Response:
    return page(request, "index.html")


async def _security_headers(message: Message, scope: Scope) -> None:
    """On every response, error pages and redirects included; API answers are never cached."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if scope["path"] == "/graphql" and "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"


def _graphql_response(custom_context: Any) -> Response:
    return Response({}, background=BackgroundTasks([]))


def _graphql_root_value(context: Any) -> None:
    return None


def create_app(settings: Settings, admin_url: str, *, database: Database | None = None) -> Litestar:
    """The app for one database; `database` lets tests share their engines."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = database or Database.connect(settings, admin_url)
        if database is None:
            await bootstrap(db, settings)
        app.state.db = db
        stop = asyncio.Event()
        jobs = None
        if settings.run_jobs:
            jobs = asyncio.create_task(serve_jobs(db, settings, app.state.key_ring, stop))
        try:
            yield
        finally:
            if jobs is not None:
                stop.set()
                await jobs
            if database is None:
                await db.dispose()

    environment = Environment(
        loader=FileSystemLoader(settings.web_dir / "templates"),
        autoescape=select_autoescape(default=True),
        auto_reload=not settings.production,
    )
    graphql = make_graphql_controller(
        build_schema(introspection=settings.graphql_introspection),
        path="/graphql",
        context_getter=graphql_context,
        graphql_ide="graphiql" if settings.graphql_introspection else None,
        allow_queries_via_get=False,
        subscription_protocols=(),  # no subscriptions: mount no websocket route
    )

    class GraphQLController(graphql):  # type: ignore[valid-type,misc]
        # Strawberry makes its (empty) Response in a worker thread, a thread hop per request for
        # a constructor, and Litestar resolves dependencies of one level in an anyio task group,
        # a task each: here the Response is made on the event loop, and the four dependencies form
        # a chain (context getter, response, context, root value), one at a time in the request's
        # own task (issue 8's profile).
        dependencies: ClassVar[Dependencies] = {
            **graphql.dependencies,
            "response": Provide(_graphql_response, sync_to_thread=False),
            "root_value": Provide(_graphql_root_value, sync_to_thread=False),
        }

        def encode_json(self, data: object) -> bytes:
            # msgspec instead of json.dumps: several times faster on a page of 50 customers with their
            # loans, and UTF-8 where json.dumps wrote \u escapes (issue 8's bench).
            return msgspec.json.encode(data)

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            metrics,
            index,
            set_language,
            SignInController,
            LanguagePages,
            CustomerPages,
            SavedViewPages,
            DashboardPages,
            DeveloperPages,
            CollateralPages,
            ContactPages,
            ComplaintPages,
            LoanPages,
            RiskPages,
            SegmentPages,
            SettingsPages,
            RetentionPages,
            ImportPages,
            ExportPages,
            SupportPages,
            ConsoleSignIn,
            ConsolePages,
            GraphQLController,
            create_static_files_router(path="/static", directories=[settings.web_dir / "static"]),
        ],
        dependencies={"web_scope": Provide(provide_web_scope)},
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="__Host-csrftoken" if settings.secure_cookies else "csrftoken",
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            cookie_samesite="lax",
            # API clients authenticate with a bearer token, not a cookie: CSRF cannot apply.
            exclude=["^/graphql$"],  # anchored: a tenant slug may contain "graphql"
        ),
        exception_handlers={**EXCEPTION_HANDLERS, **LIMIT_HANDLERS, **CONSOLE_EXCEPTION_HANDLERS},  # type: ignore[arg-type]
        after_exception=[
            log_unhandled(
                tuple(EXCEPTION_HANDLERS) + tuple(LIMIT_HANDLERS) + tuple(CONSOLE_EXCEPTION_HANDLERS)
            )
        ],
        logging_config=None,  # logging is the process's (observability.logs), not the app's
        request_max_body_size=settings.max_body_bytes or None,  # the import upload has its own
        before_send=[_security_headers],
        lifespan=[lifespan],
        openapi_config=None,  # GraphQL is the API; no route map for anyone to browse
        debug=False,
    )
    app.state.settings = settings
    app.state.key_ring = master_key_ring(settings)  # fails at start in production without a key
    app.state.metrics = AppMetrics(app.state)
    app.state.readiness = Readiness()
    app.state.rate_limiter = RateLimiter(settings)
    app.asgi_handler = RequestObserver(app.asgi_handler, app.state.metrics)
    return app
