"""The developer page: endpoint, token how-to, schema download and every example operation."""

from __future__ import annotations

from tenantcrm.graphql.schema import SDL_PATH
from tenantcrm.settings import REPO_ROOT
from tests.conftest import add_user, web_sign_in
from tests.integration.web.test_lending_pages import ZH

EXAMPLES = sorted((REPO_ROOT / "graphql" / "examples").glob("*.graphql"))


async def test_the_page_lists_every_example_and_how_to_get_a_token(client, db, tenant_a) -> None:
    await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)

    page = await client.get(f"/t/{tenant_a.slug}/developers")

    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert ZH("The GraphQL API") in page.text and "POST http://testserver/graphql" in page.text
    assert f'href="/t/{tenant_a.slug}/settings/tokens"' in page.text  # the admin may make tokens
    assert 'id="graphiql"' in page.text  # introspection is on in tests
    assert len(EXAMPLES) > 40
    for example in EXAMPLES:
        assert f'id="example-{example.stem}"' in page.text, example.stem
    assert "segmentPreview" in page.text and "loanSchedule" in page.text


async def test_a_viewer_is_told_to_ask_for_a_token_and_gets_the_schema(client, db, tenant_a) -> None:
    viewer = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, viewer)

    page = await client.get(f"/t/{tenant_a.slug}/developers")
    schema = await client.get(f"/t/{tenant_a.slug}/developers/schema.graphql")

    ask = "Your role may not create API tokens: ask an administrator of your institution for one."
    assert ZH(ask) in page.text
    assert f'href="/t/{tenant_a.slug}/settings/tokens"' not in page.text
    assert schema.status_code == 200 and schema.text == SDL_PATH.read_text(encoding="utf-8")
    assert "attachment" in schema.headers["content-disposition"]


async def test_the_page_needs_a_sign_in(client, tenant_a) -> None:
    answer = await client.get(f"/t/{tenant_a.slug}/developers/schema.graphql", follow_redirects=False)
    assert answer.status_code == 303 and "/login" in answer.headers["location"]
