"""An import whose commit would take the tenant past its customer quota is refused before any write."""

from __future__ import annotations

import dataclasses

import pytest

from tenantcrm.customers.models import Customer
from tenantcrm.imports.models import ImportJob, ImportRow
from tenantcrm.jobs.worker import run_pending
from tenantcrm.tenancy import quotas
from tenantcrm.tenancy.registry import find_tenant_by_id
from tests.integration.imports.sheets import people, xlsx
from tests.integration.imports.test_cli import cli_env, run_cli  # noqa: F401 (a fixture)
from tests.integration.imports.test_pages import browser, csrf, mapping_form, upload


async def _limited(shop, customers: int) -> None:
    """Set the customer quota and take the tenant (and its admin) as the registry now has it."""
    await quotas.set_quotas(shop.db, shop.tenant, customers=customers)
    tenant = await find_tenant_by_id(shop.db, shop.tenant.id)
    shop.fixture = dataclasses.replace(shop.fixture, tenant=tenant)
    shop.admin = dataclasses.replace(shop.admin, tenant=tenant)


async def test_the_commit_refuses_and_the_job_fails_with_nothing_written(shop):
    await _limited(shop, 2)
    # Without a user (the CLI's way) only the commit checks, as it does after any race.
    job = await shop.run(xlsx(people(3)), principal=None)
    assert job.status == "failed" and job.error == quotas.IMPORT_REFUSED["customers"]
    assert job.created_rows == 0 and await shop.count(Customer) == 0
    assert await shop.count(ImportRow, ImportRow.pii_enc.is_not(None)) == 0  # staged PII dropped

    await _limited(shop, 3)
    done = await shop.run(xlsx(people(3)), principal=None)
    assert done.status == "done" and await shop.count(Customer) == 3


async def test_a_user_is_refused_when_choosing_to_commit(shop):
    await _limited(shop, 2)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        await shop.run(xlsx(people(3)))
    assert refused.value.errors[0].text() == (
        "This import would bring your institution to 3 customers, above its limit of 2,"
        " so nothing was imported. Ask your service provider to raise it."
    )
    assert await shop.count(Customer) == 0


async def test_the_page_says_so_and_the_job_waits_staged(app, shop):
    await _limited(shop, 2)
    slug = shop.fixture.slug
    async with browser(app, slug, shop.fixture.admin_email) as client:
        job_url = (await upload(client, slug, xlsx(people(3)))).headers["location"]
        page = await client.get(job_url)
        await client.post(f"{job_url}/mapping", data={**csrf(client), **mapping_form(page.text)})
        await run_pending(shop.db, shop.ring)
        refused = await client.post(f"{job_url}/commit", data={**csrf(client), "mode": "skip_invalid"})
        assert refused.status_code == 422
        assert "本次导入将使贵机构的客户数达到 3 位，超过 2 位的上限" in refused.text
        await run_pending(shop.db, shop.ring)
    assert await shop.count(Customer) == 0
    assert await shop.count(ImportJob, ImportJob.status == "staged") == 1


async def test_the_cli_names_the_quota_on_stderr(cli_env, shop, tmp_path):  # noqa: F811
    await _limited(shop, 1)
    path = tmp_path / "people.xlsx"
    path.write_bytes(xlsx(people(2)))
    result = run_cli(cli_env, "import", shop.fixture.slug, str(path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {quotas.IMPORT_REFUSED['customers']}"
    assert await shop.count(Customer) == 0
