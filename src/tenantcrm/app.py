"""The Litestar application: pages, GraphQL, health, and the database lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from strawberry.litestar import make_graphql_controller

from tenantcrm.database import Database
from tenantcrm.graphql.context import graphql_context
from tenantcrm.graphql.schema import build_schema
from tenantcrm.settings import Settings
from tenantcrm.tenancy.provisioning import bootstrap
from tenantcrm.web.auth import SignInController, set_language
from tenantcrm.web.customers import CustomerPages
from tenantcrm.web.errors import EXCEPTION_HANDLERS
from tenantcrm.web.rendering import page
from tenantcrm.web.scope import provide_web_scope

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


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(settings: Settings, admin_url: str, *, database: Database | None = None) -> Litestar:
    """The app for one database; `database` lets tests share their engines."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = database or Database.connect(settings, admin_url)
        if database is None:
            await bootstrap(db, settings)
        app.state.db = db
        try:
            yield
        finally:
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
    )

    app = Litestar(
        route_handlers=[
            healthz,
            index,
            set_language,
            SignInController,
            CustomerPages,
            graphql,
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
            exclude=["/graphql"],
        ),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        after_request=_add_security_headers,
        lifespan=[lifespan],
        debug=False,
    )
    app.state.settings = settings
    return app
