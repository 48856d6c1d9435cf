"""The import pages: upload, mapping, progress polled by htmx, preview, commit, result and report;
errors inline; permissions; CSRF. Jobs run through the queue, drained by the test."""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from openpyxl import load_workbook

from tenantcrm.customers.models import Customer
from tenantcrm.imports.models import ImportJob
from tenantcrm.jobs.worker import run_pending
from tests.conftest import add_user, web_sign_in
from tests.integration.imports.conftest import sample
from tests.integration.imports.sheets import people, resident_id, xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTMX = {"HX-Request": "true", "HX-Target": "import-progress"}


@asynccontextmanager
async def browser(app, slug: str, email: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{secrets.randbelow(250) + 1}", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await web_sign_in(client, slug, email)).status_code == 303
        yield client


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"_csrf_token": client.cookies["csrftoken"]}


async def upload(client, slug: str, content: bytes, name: str = "客户.xlsx", kind: str = "customers"):
    return await client.post(
        f"/t/{slug}/imports",
        data={**csrf(client), "kind": kind},
        files={"file": (name, content, XLSX)},
        follow_redirects=False,
    )


def mapping_form(page: str) -> dict[str, str]:
    """The mapping form's selects with the options the page pre-selected."""
    return dict(re.findall(r'<select id="(column_\d+)".*?<option value="(\w+)" selected>', page, re.S))


async def test_the_whole_journey_through_the_pages(app, shop):
    slug = shop.fixture.slug
    async with browser(app, slug, shop.fixture.admin_email) as client:
        listing = await client.get(f"/t/{slug}/imports")
        assert listing.status_code == 200 and 'enctype="multipart/form-data"' in listing.text

        uploaded = await upload(client, slug, sample("mortgage-customers.xlsx"), "mortgage-customers.xlsx")
        assert uploaded.status_code == 303
        job_url = uploaded.headers["location"]
        mapping = await client.get(job_url)
        assert mapping.status_code == 200 and mapping.headers["cache-control"] == "no-store"
        columns = mapping_form(mapping.text)
        assert columns["column_1"] == "name" and columns["column_6"] == "collateral_text"

        started = await client.post(
            f"{job_url}/mapping", data={**csrf(client), **columns, "kind": "customers"}
        )
        assert started.status_code == 303
        running = await client.get(f"{job_url}/progress", headers=HTMX)
        assert (
            running.status_code == 200
            and 'hx-trigger="every 1s"' in running.text
            and "<progress" in running.text
        )
        assert "<html" not in running.text, "htmx gets the fragment only"
        without_js = await client.get(f"{job_url}/progress")
        assert "<html" in without_js.text and "<progress" in without_js.text, "a full page without htmx"

        await run_pending(shop.db, shop.ring)
        finished = await client.get(f"{job_url}/progress", headers=HTMX)
        assert finished.headers["hx-refresh"] == "true"
        preview = await client.get(job_url)
        assert "4201**********6447" in preview.text and "武丹丹" in preview.text
        assert "420106197109166447" not in preview.text and "18789328792" not in preview.text
        assert 'name="mode"' in preview.text

        committed = await client.post(f"{job_url}/commit", data={**csrf(client), "mode": "all_or_nothing"})
        assert committed.status_code == 303
        await run_pending(shop.db, shop.ring)
        result = await client.get(job_url)
        assert result.status_code == 200 and "report.xlsx" not in result.text  # no problems, no report
    assert await shop.count(Customer) == 60


async def test_problems_are_shown_inline_and_in_the_downloadable_report(app, shop):
    slug = shop.fixture.slug
    rows = people(4)
    bad_id = resident_id(9)[:-1] + ("1" if resident_id(9)[-1] == "0" else "0")
    rows[2][2] = bad_id
    async with browser(app, slug, shop.fixture.admin_email) as client:
        job_url = (await upload(client, slug, xlsx(rows))).headers["location"]
        page = await client.get(job_url)
        await client.post(f"{job_url}/mapping", data={**csrf(client), **mapping_form(page.text)})
        await run_pending(shop.db, shop.ring)

        preview = await client.get(job_url)
        assert "The check digit of this ID number is wrong." in preview.text or "校验" in preview.text
        assert bad_id not in preview.text
        refused = await client.post(f"{job_url}/commit", data={**csrf(client), "mode": "all_or_nothing"})
        assert refused.status_code == 422 and 'role="alert"' in refused.text
        assert await shop.count(Customer) == 0

        report = await client.get(f"{job_url}/report.xlsx", headers={"Accept-Language": "en"})
        assert report.status_code == 200 and report.headers["content-type"].startswith(XLSX)
        assert report.headers["content-disposition"].startswith('attachment; filename="import-problems-')
        lines = list(
            load_workbook(io.BytesIO(report.content), read_only=True).active.iter_rows(values_only=True)
        )
        assert len(lines) == 2 and lines[1][0] == 4 and bad_id not in repr(lines)

        await client.post(f"{job_url}/commit", data={**csrf(client), "mode": "skip_invalid"})
        await run_pending(shop.db, shop.ring)
    assert await shop.count(Customer) == 3


async def test_a_refused_file_or_mapping_is_explained_on_the_page(app, shop):
    slug = shop.fixture.slug
    async with browser(app, slug, shop.fixture.admin_email) as client:
        not_a_sheet = await upload(client, slug, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "photo.xlsx")
        assert not_a_sheet.status_code == 422 and 'role="alert"' in not_a_sheet.text
        no_file = await client.post(
            f"/t/{slug}/imports", data=csrf(client), files={"kind": (None, "customers")}
        )
        assert no_file.status_code == 422
        assert await shop.count(ImportJob) == 0

        job_url = (await upload(client, slug, xlsx(people(2)))).headers["location"]
        page = await client.get(job_url)
        columns = {
            name: ("ignore" if target == "name" else target)
            for name, target in mapping_form(page.text).items()
        }
        refused = await client.post(f"{job_url}/mapping", data={**csrf(client), **columns})
        assert refused.status_code == 422 and 'role="alert"' in refused.text
        twice = {**columns, "column_0": "phone"}
        assert (await client.post(f"{job_url}/mapping", data={**csrf(client), **twice})).status_code == 422

        without_csrf = await client.post(f"{job_url}/cancel", follow_redirects=False)
        assert without_csrf.status_code == 403
        cancelled = await client.post(f"{job_url}/cancel", data=csrf(client), follow_redirects=False)
        assert cancelled.status_code == 303
    assert (await shop.job(job_url.rsplit("/", 1)[1])).status == "cancelled"


async def test_who_may_import_and_whose_jobs_they_see(app, shop, db):
    slug = shop.fixture.slug
    viewer = await add_user(db, shop.tenant, "viewer")
    officer = await add_user(db, shop.tenant, "loan_officer")
    async with browser(app, slug, shop.fixture.admin_email) as admin:
        admins_job = (await upload(admin, slug, xlsx(people(2)))).headers["location"]
    async with browser(app, slug, viewer) as client:
        assert (await client.get(f"/t/{slug}/imports")).status_code == 403
        assert (await upload(client, slug, xlsx(people(2)))).status_code == 403
        assert (await client.get(admins_job)).status_code == 403
    async with browser(app, slug, officer) as client:
        assert (await client.get(f"/t/{slug}/imports")).status_code == 200
        assert (await client.get(admins_job)).status_code == 404, "another user's job looks missing"
        assert (await client.get(f"/t/{slug}/imports/{secrets.token_hex(8)}")).status_code == 404
        own = await upload(client, slug, xlsx(people(2, start=10)))
        assert own.status_code == 303 and (await client.get(own.headers["location"])).status_code == 200
