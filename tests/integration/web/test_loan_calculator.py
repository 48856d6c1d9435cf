"""The loan calculator page: every method side by side, the chosen schedule, errors in place."""

from __future__ import annotations

from tests.conftest import add_user, web_sign_in


async def test_the_calculator_compares_methods_and_shows_the_chosen_schedule(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, email)
    empty = await client.get(f"/t/{tenant_a.slug}/loans/calculator")
    assert empty.status_code == 200 and 'id="calculator-results"' in empty.text
    page = await client.get(
        f"/t/{tenant_a.slug}/loans/calculator?amount=300万&rate=4.9&term=120&start=2026-12-01&method=equal_principal"
    )
    assert page.status_code == 200
    assert "31,673.22" in page.text  # equal instalments, in the comparison table
    assert "37,250.00" in page.text  # equal principal's first payment: 25,000 + 12,250
    assert page.text.count('<td class="num">') > 120 * 4  # the chosen schedule's rows
    partial = await client.get(
        f"/t/{tenant_a.slug}/loans/calculator?amount=1000000&rate=3.5&term=12",
        headers={"HX-Request": "true", "HX-Target": "calculator-results"},
    )
    assert "<html" not in partial.text and "calculator-results" in partial.text


async def test_bad_terms_are_shown_beside_their_fields(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "viewer")
    await web_sign_in(client, tenant_a.slug, email)
    for query, marker in [
        ("amount=abc&rate=4.9&term=12", 'id="amount-error"'),
        ("amount=100000&rate=150&term=12", 'id="annual_rate-error"'),
        ("amount=100000&rate=4.9&term=999", 'id="term_months-error"'),
    ]:
        response = await client.get(
            f"/t/{tenant_a.slug}/loans/calculator?{query}", headers={"Accept-Language": "en"}
        )
        assert response.status_code == 422 and marker in response.text, query
