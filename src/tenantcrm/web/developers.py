"""The developer page: how to call the GraphQL API, the schema, and the example operations."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from litestar import Controller, MediaType, Request, Response, get

from tenantcrm.auth.permissions import API_TOKENS_MANAGE, CUSTOMERS_READ
from tenantcrm.graphql.schema import SDL_PATH
from tenantcrm.settings import Settings
from tenantcrm.web.rendering import page
from tenantcrm.web.scope import WebScope

EXAMPLES_DIR = SDL_PATH.parent / "examples"


@dataclass(frozen=True)
class Example:
    name: str
    operation: str
    variables: str | None


@cache
def examples(folder: Path = EXAMPLES_DIR) -> tuple[Example, ...]:
    """The operations in graphql/examples (the test suite runs each of them), read once."""
    found = []
    for path in sorted(folder.glob("*.graphql")):
        variables = path.with_suffix(".variables.json")
        found.append(
            Example(
                path.stem,
                path.read_text(encoding="utf-8").strip(),
                variables.read_text(encoding="utf-8").strip() if variables.exists() else None,
            )
        )
    return tuple(found)


@cache
def schema_sdl(path: Path = SDL_PATH) -> str:
    return path.read_text(encoding="utf-8")


class DeveloperPages(Controller):
    path = "/t/{slug:str}/developers"

    @get("/", name="developers")
    async def index(self, request: Request, web_scope: WebScope) -> Response:
        web_scope.principal.require(CUSTOMERS_READ)  # anyone of the tenant who may read its data
        settings: Settings = request.app.state.settings
        endpoint = str(request.base_url).rstrip("/") + "/graphql"
        return page(
            request,
            "developers/index.html",
            slug=web_scope.tenant.slug,
            endpoint=endpoint,
            graphiql=settings.graphql_introspection,
            can_make_tokens=web_scope.principal.can(API_TOKENS_MANAGE),
            examples=examples(),
        )

    @get("/schema.graphql", name="developers_schema", media_type=MediaType.TEXT)
    async def schema(self, web_scope: WebScope) -> Response[str]:
        """The SDL as a file, for code generators; the same text as graphql/schema.graphql."""
        web_scope.principal.require(CUSTOMERS_READ)
        return Response(
            schema_sdl(),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="schema.graphql"',
                "Cache-Control": "no-store",
            },
        )
