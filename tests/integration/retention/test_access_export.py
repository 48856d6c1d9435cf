"""Access request export: everything on one customer as JSON and .xlsx, personal data revealed
only with a purpose (logged and audited), admin.retention and pii.reveal both needed."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tenantcrm.audit.models import AuditEvent
from tenantcrm.customers.models import PiiAccess
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in
from tests.integration.retention.helpers import fingerprint, seed_customer

EN = {"Accept-Language": "en"}


async def post(client, path: str, data: dict | None = None, **kwargs):
    data = {"_csrf_token": client.cookies["csrftoken"], **(data or {})}
    return await client.post(path, data=data, follow_redirects=False, **kwargs)


@pytest.fixture
async def office(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "access")
    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    seeded = await seed_customer(db, settings, fixture.tenant, admin, loan="settled", aged=False)
    return fixture, seeded


async def test_json_export_holds_everything_and_is_logged(client, db, office):
    fixture, seeded = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    form = await client.get(f"/t/{fixture.slug}/settings/retention/access?customer={seeded.id}")
    assert form.status_code == 200 and f'value="{seeded.id}"' in form.text
    async with tenant_session(db, fixture.tenant) as session:
        logged_before = len((await session.scalars(select(PiiAccess.id))).all())

    answer = await post(
        client,
        f"/t/{fixture.slug}/settings/retention/access",
        {"customer_id": str(seeded.id), "purpose": "客户查阅申请 2026-12", "format": "json"},
    )
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"].startswith('attachment; filename="access-')
    data = json.loads(answer.content)
    customer = data["customer"][0]
    for field in ("name", "national_id", "phone", "email", "address"):
        assert customer[field] == seeded.values[field], field
    assert "national_id_enc" not in customer and "national_id_bidx" not in customer
    assert [i["summary"] for i in data["interactions"]] == [seeded.values["summary"]]
    assert [(c["content"], c["resolution"]) for c in data["complaints"]] == [
        (seeded.values["complaint"], seeded.values["resolution"])
    ]
    assert len(data["loans"]) == 1 and len(data["installments"]) == 12
    assert len(data["import_rows"]) == 1 and "pii_enc" not in data["import_rows"][0]

    async with tenant_session(db, fixture.tenant) as session:
        logged = (await session.scalars(select(PiiAccess).order_by(PiiAccess.id))).all()
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "export", AuditEvent.entity_id == str(seeded.id))
        )
    assert len(logged) == logged_before + 4 and logged[-1].purpose == "客户查阅申请 2026-12"
    assert event.changes["sections"]["interactions"] == 1 and event.changes["format"] == "json"


async def test_xlsx_export_has_a_sheet_per_kind_of_record(client, office):
    fixture, seeded = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    answer = await post(
        client,
        f"/t/{fixture.slug}/settings/retention/access",
        {"customer_id": str(seeded.id), "purpose": "客户查阅申请", "format": "xlsx"},
    )
    assert answer.status_code == 200
    workbook = load_workbook(io.BytesIO(answer.content), read_only=True)
    assert {"customer", "loans", "interactions", "complaints", "pii_access_log"} <= set(workbook.sheetnames)
    rows = list(workbook["customer"].iter_rows(values_only=True))
    header, values = rows[0], rows[1]
    assert values[header.index("phone")] == seeded.values["phone"]


async def test_a_missing_purpose_is_refused_inline_and_reveals_nothing(client, db, office):
    fixture, seeded = office
    await web_sign_in(client, fixture.slug, fixture.admin_email)
    before = await fingerprint(db, fixture.tenant)
    refused = await post(
        client,
        f"/t/{fixture.slug}/settings/retention/access",
        {"customer_id": str(seeded.id), "purpose": "x", "format": "json"},
        headers=EN,
    )
    assert refused.status_code == 422 and 'id="purpose-error"' in refused.text
    assert seeded.values["phone"] not in refused.text
    assert await fingerprint(db, fixture.tenant) == before


async def test_the_export_needs_admin_retention_and_pii_reveal(client, db, office):
    fixture, seeded = office
    manager = await add_user(db, fixture.tenant, "manager")  # pii.reveal without admin.retention
    await web_sign_in(client, fixture.slug, manager)
    assert (await client.get(f"/t/{fixture.slug}/settings/retention/access")).status_code == 403
    posted = await post(
        client,
        f"/t/{fixture.slug}/settings/retention/access",
        {"customer_id": str(seeded.id), "purpose": "客户查阅申请", "format": "json"},
    )
    assert posted.status_code == 403 and seeded.values["phone"] not in posted.text
