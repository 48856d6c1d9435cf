"""The lending pages refuse what GraphQL refuses, in the same words: a loan over the maximum
(typed in 万 or in yuan, on the new-loan form and the calculator) and a lien order of 0."""

from __future__ import annotations

from datetime import date

import pytest
from markupsafe import escape

from tenantcrm.collateral.service import CollateralService
from tenantcrm.customers.service import CustomerService
from tenantcrm.loans.service import LoanFilter, LoanService
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tests.conftest import add_user, principal_of, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
TOO_LARGE = "A loan must be less than {maximum} yuan."
LIEN = "Enter a lien order from 1 to 9."


def shows(page, message: str, **params: str) -> bool:
    """Whether the page shows the message in Chinese (the default language), as HTML escapes it."""
    return str(escape(ZH(message).format(**params))) in page.text


@pytest.fixture
async def officer(client, db, tenant_a):
    email = await add_user(db, tenant_a.tenant, "loan_officer")
    assert (await web_sign_in(client, tenant_a.slug, email)).status_code == 303
    principal = await principal_of(db, tenant_a.tenant, email)
    async with tenant_session(db, tenant_a.tenant) as session:
        customer = await CustomerService(session, principal).create_customer({"name": "限额测试"})
    return principal, customer.id


async def post(client, path: str, data: dict):
    return await client.post(
        path, data={"_csrf_token": client.cookies["csrftoken"], **data}, follow_redirects=False
    )


async def counts(db, tenant, principal, customer_id) -> tuple[int, int]:
    async with tenant_session(db, tenant) as session:
        loans = await LoanService(session, principal).list_loans(LoanFilter(customer_id=customer_id))
        collateral = await CollateralService(session, principal).list_for_customer(customer_id)
    return loans.total_count, len(collateral)


@pytest.mark.parametrize("amount", ["100000000万", "1000000000000"])
async def test_a_loan_over_the_maximum_is_refused_on_the_form_and_writes_nothing(
    client, db, tenant_a, officer, amount
):
    principal, customer_id = officer
    assert ZH(TOO_LARGE) != TOO_LARGE
    refused = await post(
        client,
        f"/t/{tenant_a.slug}/customers/{customer_id}/loans",
        {
            "product": "经营贷",
            "amount": amount,
            "annual_rate": "4.9",
            "term_months": "12",
            "method": "equal_installment",
            "start_date": date.today().isoformat(),
        },
    )
    assert refused.status_code == 422
    assert shows(refused, TOO_LARGE, maximum="1,000,000,000,000")
    assert f'value="{amount}"' in refused.text  # the typed amount is kept for correcting
    assert await counts(db, tenant_a.tenant, principal, customer_id) == (0, 0)


async def test_the_calculator_refuses_the_same_amount_in_the_same_words(client, tenant_a, officer):
    page = await client.get(
        f"/t/{tenant_a.slug}/loans/calculator", params={"amount": "100000000万", "rate": "4.9", "term": "12"}
    )
    assert page.status_code == 422
    assert shows(page, TOO_LARGE, maximum="1,000,000,000,000")
    fine = await client.get(
        f"/t/{tenant_a.slug}/loans/calculator", params={"amount": "300万", "rate": "4.9", "term": "120"}
    )
    assert fine.status_code == 200 and "31,673.22" in fine.text


async def test_a_lien_order_of_0_is_refused_on_the_form_and_writes_nothing(client, db, tenant_a, officer):
    principal, customer_id = officer
    refused = await post(
        client,
        f"/t/{tenant_a.slug}/customers/{customer_id}/collateral",
        {"kind": "residence", "appraised_value": "2000000", "lien_order": "0", "description": "二押"},
    )
    assert refused.status_code == 422
    assert shows(refused, LIEN)
    assert 'id="lien_order-error"' in refused.text
    assert await counts(db, tenant_a.tenant, principal, customer_id) == (0, 0)
