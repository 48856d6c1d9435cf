"""Customer PII: encrypted at rest, masked on every surface, found by blind index, revealed with a log."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from tenantcrm.audit.service import list_events
from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer, PiiAccess
from tenantcrm.customers.service import CustomerFilter, CustomerService
from tenantcrm.pii.cipher import PiiDecryptionError, decryption_count
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.pii.rotation import rotate_tenant
from tenantcrm.pii.store import cipher_source, forget
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.validation import InvalidInput
from tests.conftest import add_user, api_token_for, make_tenant, principal_of, web_sign_in

ID_A = "11010519491231002X"
ID_B = "440524198001010013"
PHONE = "13812345678"


def id_with_check(body17: str) -> str:
    weights, check = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), "10X98765432"
    return body17 + check[sum(int(d) * w for d, w in zip(body17, weights, strict=True)) % 11]


def fresh_id() -> str:
    return id_with_check(f"310101199{uuid.uuid4().int % 10}0101{uuid.uuid4().int % 900 + 100}")


@pytest.fixture
async def bank(lifecycle, db, settings):
    fixture = await make_tenant(lifecycle, "pii")
    ring = master_key_ring(settings)

    def service(session, principal):
        return CustomerService(
            session,
            principal,
            cipher_source(db, ring, fixture.tenant),
        )

    admin = await principal_of(db, fixture.tenant, fixture.admin_email)
    return fixture, admin, service, ring


async def create(db, bank, **values):
    fixture, admin, service, _ = bank
    async with tenant_session(db, fixture.tenant) as session:
        return await service(session, admin).create_customer({"name": "王五", **values})


async def test_pii_is_stored_encrypted_masked_and_indexed(db, bank):
    fixture, *_ = bank
    created = await create(
        db,
        bank,
        national_id=ID_A,
        phone="+86 138 1234 5678",
        email="Wang.Wu@Example.com",
        address="上海市黄浦区南京东路100号",
    )
    async with db.admin_engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text(f'SELECT * FROM "{fixture.tenant.schema}".customers WHERE id = :i'),
                    {"i": created.id},
                )
            )
            .mappings()
            .one()
        )
    everything = " ".join(str(v) for v in row.values())
    for clear in (ID_A, PHONE, "wang.wu", "南京东路"):
        assert clear not in everything and clear.encode() not in row["national_id_enc"] + row["address_enc"]
    assert row["national_id_masked"] == "1101**********002X"
    assert row["phone_masked"] == "138****5678"
    assert row["email_masked"] == "w*******@example.com"
    assert row["address_masked"] == "上海市黄浦区****"
    assert len(row["national_id_bidx"]) == 32 and row["pii_key_version"] == 1


async def test_invalid_identity_numbers_and_phones_are_refused(db, bank):
    for values, field, code in [
        ({"national_id": "110105194912310021"}, "national_id", "invalid_check_digit"),
        ({"national_id": "91350100M000100Y43"}, "national_id", "invalid_format"),  # a credit code on a person
        ({"kind": "enterprise", "national_id": ID_A}, "national_id", "invalid_credit_code"),
        ({"phone": "12345"}, "phone", "invalid_phone"),
        ({"email": "nope"}, "email", "invalid_email"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            await create(db, bank, **values)
        assert refused.value.for_field(field).code == code
    enterprise = await create(db, bank, kind="enterprise", national_id="91350100M000100Y43")
    assert enterprise.national_id_masked == "9135**********0Y43"


async def test_a_second_customer_with_the_same_identity_number_is_refused(db, bank):
    await create(db, bank, national_id=ID_B)
    with pytest.raises(InvalidInput) as refused:
        await create(db, bank, national_id="４４０５２４ １９８００１０１００１３")  # full-width, spaced
    assert refused.value.for_field("national_id").code == "duplicate"


async def test_blind_index_search_finds_exact_matches_only_within_the_tenant(db, bank, lifecycle, settings):
    fixture, admin, service, ring = bank
    national_id = fresh_id()
    wanted = await create(db, bank, national_id=national_id, phone="021-87654321")
    other = await make_tenant(lifecycle, "pii-other")
    other_admin = await principal_of(db, other.tenant, other.admin_email)
    async with tenant_session(db, other.tenant) as session:
        await CustomerService(
            session,
            other_admin,
            cipher_source(db, ring, other.tenant),
        ).create_customer({"name": "别家客户", "national_id": national_id})
    async with tenant_session(db, fixture.tenant) as session:
        svc = service(session, admin)
        by_id = await svc.list_customers(filter=CustomerFilter(search=national_id.lower()))
        by_phone = await svc.list_customers(filter=CustomerFilter(search="(021) 8765 4321"))
        partial = await svc.list_customers(filter=CustomerFilter(search=national_id[:10]))
    assert [c.id for c in by_id.customers] == [wanted.id]  # the other tenant's copy stays out
    assert [c.id for c in by_phone.customers] == [wanted.id]
    assert partial.total_count == 0


async def test_reveal_logs_who_saw_what_and_why(db, bank):
    fixture, admin, service, _ = bank
    created = await create(db, bank, national_id=fresh_id(), phone=PHONE)
    async with tenant_session(db, fixture.tenant) as session:
        svc = service(session, admin)
        with pytest.raises(InvalidInput):
            await svc.reveal_pii(created.id, ["phone"], purpose=" ", channel="web")
        clear = await svc.reveal_pii(created.id, ["phone", "email"], purpose="回访逾期客户", channel="web")
    assert clear == {"phone": PHONE, "email": None}
    async with tenant_session(db, fixture.tenant) as session:
        logged = (await session.scalars(select(PiiAccess).where(PiiAccess.customer_id == created.id))).all()
        events = await list_events(session, admin, action="reveal")
    assert {(a.field, a.purpose, a.channel, a.user_id) for a in logged} == {
        ("phone", "回访逾期客户", "web", admin.user_id),
        ("email", "回访逾期客户", "web", admin.user_id),
    }
    assert events.events[0].changes["fields"] == ["phone", "email"] and PHONE not in str(
        events.events[0].changes
    )
    # The purpose stays in the access log (which retention may clear), never in the append-only chain.
    assert events.events[0].changes["purpose"] == "[redacted]"


async def test_a_user_without_pii_reveal_never_triggers_a_decryption(client, db, bank):
    fixture, _, service, _ = bank
    created = await create(db, bank, national_id=fresh_id(), phone=PHONE)
    email = await add_user(db, fixture.tenant, "auditor")  # reads all customers, lacks pii.reveal
    auditor = await principal_of(db, fixture.tenant, email)
    token = await api_token_for(db, fixture.tenant, email)
    before = decryption_count()
    await web_sign_in(client, fixture.slug, email)
    listing = await client.get(f"/t/{fixture.slug}/customers")
    detail = await client.get(f"/t/{fixture.slug}/customers/{created.id}")
    api = await client.post(
        "/graphql",
        json={"query": "{ customers(first: 50) { edges { node { nationalId phone } } } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    async with tenant_session(db, fixture.tenant) as session:
        with pytest.raises(PermissionDenied):
            await service(session, auditor).reveal_pii(
                created.id, ["phone"], purpose="just looking", channel="web"
            )
    assert decryption_count() == before
    assert "138****5678" in listing.text and "138****5678" in detail.text and PHONE not in detail.text
    assert 'action="/t/' + fixture.slug + f'/customers/{created.id}/reveal"' not in detail.text
    phones = {e["node"]["phone"] for e in api.json()["data"]["customers"]["edges"]}
    assert "138****5678" in phones and PHONE not in phones


async def test_a_ciphertext_copied_to_another_row_fails_to_decrypt(db, bank):
    fixture, admin, service, _ = bank
    source = await create(db, bank, national_id=fresh_id())
    target = await create(db, bank, national_id=fresh_id())
    async with db.admin_engine.begin() as conn:
        await conn.execute(
            text(
                f'UPDATE "{fixture.tenant.schema}".customers SET national_id_enc ='
                f' (SELECT national_id_enc FROM "{fixture.tenant.schema}".customers WHERE id = :s)'
                " WHERE id = :t"
            ),
            {"s": source.id, "t": target.id},
        )
    async with tenant_session(db, fixture.tenant) as session:
        with pytest.raises(PiiDecryptionError):
            await service(session, admin).reveal_pii(
                target.id, ["national_id"], purpose="checking", channel="web"
            )


async def test_everything_decrypts_after_tenant_key_rotation(db, bank):
    fixture, admin, service, ring = bank
    numbers = {}
    for _ in range(3):
        national_id = fresh_id()
        numbers[(await create(db, bank, national_id=national_id, phone=PHONE)).id] = national_id
    result = await rotate_tenant(db, ring, fixture.tenant, batch_size=2)
    assert result["to_version"] == 2 and result["rows_reencrypted"] >= 3
    forget(fixture.tenant.id)
    async with tenant_session(db, fixture.tenant) as session:
        svc = service(session, admin)
        for customer_id, national_id in numbers.items():
            clear = await svc.reveal_pii(
                customer_id, ["national_id", "phone"], purpose="after rotation", channel="web"
            )
            assert clear == {"national_id": national_id, "phone": PHONE}
        versions = set(
            await session.scalars(select(Customer.pii_key_version).where(Customer.id.in_(numbers)))
        )
        found = await svc.list_customers(filter=CustomerFilter(search=next(iter(numbers.values()))))
    assert versions == {2}
    assert found.total_count == 1  # the index key survives data-key rotation


async def test_web_reveal_shows_clear_values_on_that_answer_only(client, db, bank):
    fixture, *_ = bank
    created = await create(db, bank, phone=PHONE)
    await web_sign_in(client, fixture.slug, fixture.admin_email, fixture.password)
    detail = await client.get(f"/t/{fixture.slug}/customers/{created.id}")
    assert "138****5678" in detail.text and f"/customers/{created.id}/reveal" in detail.text
    refused = await client.post(
        f"/t/{fixture.slug}/customers/{created.id}/reveal",
        data={"_csrf_token": client.cookies["csrftoken"], "purpose": ""},
    )
    assert refused.status_code == 422 and PHONE not in refused.text
    shown = await client.post(
        f"/t/{fixture.slug}/customers/{created.id}/reveal",
        data={"_csrf_token": client.cookies["csrftoken"], "purpose": "核实联系方式"},
    )
    assert shown.status_code == 200 and PHONE in shown.text
    assert shown.headers["cache-control"] == "no-store" and PHONE not in str(shown.url)
    assert PHONE not in (await client.get(f"/t/{fixture.slug}/customers/{created.id}")).text


async def test_graphql_reveal_needs_the_permission_and_a_purpose(client, db, bank):
    fixture, *_ = bank
    created = await create(db, bank, national_id=ID_A, phone=PHONE)
    admin_token = await api_token_for(db, fixture.tenant, fixture.admin_email)
    officer_token = await api_token_for(
        db, fixture.tenant, await add_user(db, fixture.tenant, "loan_officer")
    )
    mutation = """mutation ($id: ID!, $purpose: String!) {
      revealCustomerPii(customerId: $id, fields: ["nationalId", "phone"], purpose: $purpose) {
        __typename ... on RevealedPii { nationalId phone email }
        ... on PermissionError { permission } ... on InputError { fields { field code } } } }"""

    async def reveal(token, purpose):
        response = await client.post(
            "/graphql",
            json={"query": mutation, "variables": {"id": str(created.id), "purpose": purpose}},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.json()["data"]["revealCustomerPii"]

    assert await reveal(admin_token, "核对身份") == {
        "__typename": "RevealedPii",
        "nationalId": ID_A,
        "phone": PHONE,
        "email": None,
    }
    assert (await reveal(officer_token, "核对身份"))["__typename"] == "PermissionError"
    assert (await reveal(admin_token, ""))["fields"][0]["field"] == "purpose"


async def test_editing_on_the_web_keeps_pii_left_blank(client, db, bank):
    fixture, *_ = bank
    created = await create(db, bank, phone=PHONE, national_id=fresh_id())
    await web_sign_in(client, fixture.slug, fixture.admin_email, fixture.password)
    form = await client.get(f"/t/{fixture.slug}/customers/{created.id}/edit")
    assert PHONE not in form.text and "138****5678" in form.text  # shown as a hint, never in clear
    saved = await client.post(
        f"/t/{fixture.slug}/customers/{created.id}/edit",
        data={
            "_csrf_token": client.cookies["csrftoken"],
            "kind": "individual",
            "name": "王五 改",
            "risk_level": "low",
            "status": "active",
            "phone": "",
            "national_id": "",
            "email": "",
            "address": "",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    async with tenant_session(db, fixture.tenant) as session:
        row = await session.get(Customer, created.id)
        assert row.name == "王五 改" and row.phone_masked == "138****5678" and row.national_id_enc is not None


async def test_two_officers_saving_the_same_person_at_once_make_one_customer(db, bank):
    import asyncio

    fixture, admin, service, _ = bank
    national_id = fresh_id()

    async def save():
        async with tenant_session(db, fixture.tenant) as session:
            return await service(session, admin).create_customer(
                {"name": "同一人", "national_id": national_id}
            )

    results = await asyncio.gather(save(), save(), return_exceptions=True)
    assert sum(isinstance(r, Customer) for r in results) == 1
    refused = next(r for r in results if not isinstance(r, Customer))
    assert isinstance(refused, InvalidInput) and refused.for_field("national_id").code == "duplicate"


async def test_updating_to_another_customers_identity_number_is_refused(db, bank):
    fixture, admin, service, _ = bank
    taken = fresh_id()
    await create(db, bank, national_id=taken)
    other = await create(db, bank, national_id=fresh_id())
    async with tenant_session(db, fixture.tenant) as session:
        with pytest.raises(InvalidInput) as refused:
            await service(session, admin).update_customer(other.id, {"national_id": taken})
    assert refused.value.for_field("national_id").code == "duplicate"


async def test_a_pii_change_is_audited_even_when_its_mask_stays_the_same(db, bank):
    fixture, admin, service, _ = bank
    created = await create(db, bank, phone="13800001234")
    async with tenant_session(db, fixture.tenant) as session:
        await service(session, admin).update_customer(created.id, {"phone": "13899991234"})
        events = await list_events(session, admin, action="update", entity_id=str(created.id))
    assert events.events[0].changes == {"phone": {"from": "[redacted]", "to": "[redacted]"}}


async def test_a_graphql_reveal_must_stand_alone(client, db, bank):
    fixture, *_ = bank
    created = await create(db, bank, phone=PHONE)
    token = await api_token_for(db, fixture.tenant, fixture.admin_email)
    query = f"""mutation {{
      r: revealCustomerPii(customerId: "{created.id}", fields: ["phone"], purpose: "核对") {{
        __typename ... on RevealedPii {{ phone }} }}
      other: createCustomer(input: {{kind: INDIVIDUAL, name: "x"}}) {{ __typename }} }}"""
    body = (
        await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert body["data"]["r"] == {"__typename": "InputError"} and PHONE not in str(body)
