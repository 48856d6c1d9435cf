"""Operators sign in with a password and then a TOTP code; their session is the console's alone."""

from __future__ import annotations

import dataclasses

import httpx
import pyotp
import pytest
from sqlalchemy import text

from tenantcrm.operators import service
from tenantcrm.operators.totp import matching_step, new_secret, provisioning_uri
from tests.conftest import web_sign_in
from tests.integration.console.helpers import (
    OperatorFixture,
    console_sign_in,
    csrf,
    enter_code,
    enter_password,
    events,
    make_operator,
)


@pytest.fixture
async def operator(db, settings) -> OperatorFixture:
    """An operator of one test alone: a TOTP step, once used, is spent for that operator."""
    return await make_operator(db, settings)


def _set_cookie(response: httpx.Response, name: str) -> str:
    return next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(f"{name}=")
    )


async def test_password_then_code_opens_the_console(client, db, operator, tenant_a):
    password_step = await enter_password(client, operator)
    assert password_step.status_code == 303 and password_step.headers["location"] == "/platform/login/code"
    cookie = _set_cookie(password_step, "tcrm_platform").lower()
    assert "path=/platform" in cookie and "httponly" in cookie and "samesite=strict" in cookie

    assert (await client.get("/platform/login/code")).status_code == 200
    code_step = await enter_code(client, operator.code())
    assert code_step.status_code == 303 and code_step.headers["location"] == "/platform/"
    listing = await client.get("/platform/")
    assert listing.status_code == 200
    assert f'data-slug="{tenant_a.slug}"' in listing.text
    assert listing.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in listing.headers["content-security-policy"]
    signed_in = await events(db, action="sign_in", actor=operator.email)
    assert len(signed_in) == 1 and signed_in[0]["operator_id"] is not None


async def test_the_password_alone_opens_nothing(client, operator):
    await enter_password(client, operator)
    for path in ("/platform/", "/platform/events", "/platform/tenants/new"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/platform/login", path


async def test_a_wrong_password_and_an_unknown_operator_look_the_same(client, operator):
    wrong = await enter_password(client, operator, "not the password")
    unknown = await enter_password(client, dataclasses.replace(operator, email="nobody@platform.example"))
    assert wrong.status_code == unknown.status_code == 401
    assert "tcrm_platform" not in wrong.headers.get("set-cookie", "")
    assert wrong.text.replace(operator.email, "E") == unknown.text.replace("nobody@platform.example", "E")


async def test_a_wrong_code_is_refused(client, operator):
    await enter_password(client, operator)
    wrong = "000000" if operator.code() != "000000" else "111111"
    response = await enter_code(client, wrong)
    assert response.status_code == 401
    assert (await client.get("/platform/", follow_redirects=False)).status_code == 303


async def test_a_code_is_taken_once(client, operator):
    code = operator.code()
    await enter_password(client, operator)
    assert (await enter_code(client, code)).status_code == 303
    await client.post("/platform/logout", data={"_csrf_token": csrf(client)})

    # The same code again, even with the right password and within its 30 seconds: refused.
    await enter_password(client, operator)
    assert (await enter_code(client, code)).status_code == 401
    # So is the previous step's code, which drift would otherwise allow: it is older than the last.
    assert (await enter_code(client, operator.code(-1))).status_code == 401
    # The next step's code is new, and accepted.
    assert (await enter_code(client, operator.code(+1))).status_code == 303


async def test_wrong_codes_are_throttled_and_end_the_waiting_session(client, operator):
    await enter_password(client, operator)
    wrong = "000000" if operator.code() != "000000" else "111111"
    statuses = [(await enter_code(client, wrong)).status_code for _ in range(service.CODE_LIMIT)]
    assert statuses == [401] * service.CODE_LIMIT
    blocked = await enter_code(client, operator.code())
    assert blocked.status_code == 429
    # The waiting session is gone: the right code now just sends the operator back to the start.
    again = await enter_code(client, operator.code())
    assert again.status_code == 303 and again.headers["location"] == "/platform/login"


async def test_wrong_passwords_are_throttled(client, operator):
    for _ in range(5):
        assert (await enter_password(client, operator, "not the password")).status_code == 401
    assert (await enter_password(client, operator)).status_code == 429


async def test_a_disabled_operator_is_signed_out_and_cannot_sign_in(client, db, operator):
    await console_sign_in(client, operator)
    await service.disable_operator(db, operator.email)
    assert (await client.get("/platform/", follow_redirects=False)).status_code == 303
    assert (await enter_password(client, operator)).status_code == 401


async def test_reset_mfa_ends_sessions_and_the_old_secret(client, db, settings, operator):
    from tenantcrm.pii.keys import master_key_ring

    await console_sign_in(client, operator)
    enrolment = await service.reset_mfa(db, master_key_ring(settings), operator.email)
    assert (await client.get("/platform/", follow_redirects=False)).status_code == 303
    await enter_password(client, operator)
    assert (await enter_code(client, operator.code(+1))).status_code == 401  # the old secret
    renewed = dataclasses.replace(operator, secret=enrolment.secret)
    assert (await enter_code(client, renewed.code())).status_code == 303


async def test_the_totp_secret_is_stored_wrapped(db, operator):
    async with db.admin_engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT totp_secret_wrapped, password_hash FROM platform.operators WHERE email = :e"),
                {"e": operator.email},
            )
        ).one()
    assert operator.secret.encode() not in bytes(row.totp_secret_wrapped)
    assert row.password_hash.startswith("$argon2id$")


async def test_an_operator_session_never_opens_tenant_pages(client, app, operator, tenant_a):
    await console_sign_in(client, operator)
    secret = client.cookies["tcrm_platform"]
    # The cookie is scoped to /platform: the tenant's pages do not even receive it ...
    customers = await client.get(f"/t/{tenant_a.slug}/customers", follow_redirects=False)
    assert customers.status_code == 303
    assert customers.headers["location"].startswith(f"/t/{tenant_a.slug}/login")
    # ... and handed over as a tenant session or a bearer token, its secret opens nothing.
    transport = httpx.ASGITransport(app=app, client=("198.51.100.251", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        forged = await other.get(
            f"/t/{tenant_a.slug}/customers",
            headers={"cookie": f"tcrm_session={tenant_a.tenant.id}.{secret}; tcrm_platform={secret}"},
            follow_redirects=False,
        )
        assert forged.status_code == 303 and "/login" in forged.headers["location"]
        graphql = await other.post(
            "/graphql",
            json={"query": "{ customers(first: 1) { totalCount } }"},
            headers={"cookie": f"tcrm_platform={secret}", "Authorization": f"Bearer {secret}"},
        )
        assert graphql.status_code == 401


async def test_a_tenant_session_never_opens_the_console(client, tenant_a):
    assert (await web_sign_in(client, tenant_a.slug, tenant_a.admin_email)).status_code == 303
    assert (await client.get(f"/t/{tenant_a.slug}/customers")).status_code == 200
    tenant_cookie = client.cookies["tcrm_session"]
    for path in ("/platform/", "/platform/events", f"/platform/tenants/{tenant_a.slug}"):
        response = await client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/platform/login", path
    # Nor does the tenant cookie's value work as an operator cookie.
    for value in (tenant_cookie, tenant_cookie.partition(".")[2]):
        client.cookies.set("tcrm_platform", value)
        assert (await client.get("/platform/", follow_redirects=False)).status_code == 303


async def test_the_event_log_is_append_only(db, operator):
    async with db.app_engine.connect() as conn:
        with pytest.raises(Exception, match="permission denied"):
            await conn.execute(text("UPDATE platform.operator_events SET action = 'x'"))
    async with db.admin_engine.connect() as conn:
        with pytest.raises(Exception, match="append-only"):
            await conn.execute(text("DELETE FROM platform.operator_events"))


async def test_the_app_role_cannot_change_an_operator_account(db, operator):
    async with db.app_engine.connect() as conn:
        for statement in (
            "UPDATE platform.operators SET status = 'active'",
            "UPDATE platform.operators SET password_hash = 'x'",
            "INSERT INTO platform.operators (email, password_hash, totp_secret_wrapped, totp_master_key_id)"
            " VALUES ('x@y.z', 'x', '\\x00', 'x')",
        ):
            with pytest.raises(Exception, match="permission denied"):
                await conn.execute(text(statement))
            await conn.rollback()


def test_codes_match_their_step_within_one_step_of_drift():
    secret = new_secret()
    now = 1_800_000_000
    step = int(now // 30)
    code = pyotp.TOTP(secret).generate_otp(step)
    assert matching_step(secret, code, now) == step
    assert matching_step(secret, code, now + 30) == step  # the phone is a step behind
    assert matching_step(secret, code, now + 90) is None
    assert matching_step(secret, "１２３４５６", now) is None  # full-width digits are not a code
    assert provisioning_uri(secret, "ops@platform.example").startswith("otpauth://totp/tenantcrm:")


async def test_rotating_the_master_key_rewraps_totp_secrets(db, settings):
    import os

    from tenantcrm.operators import totp
    from tenantcrm.pii.keys import MasterKey, MasterKeyError, MasterKeyRing, master_key_ring

    dev = master_key_ring(settings).current  # what the other tests' operators are wrapped with
    old, new = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    email = f"rotate-{os.urandom(3).hex()}@platform.example"
    enrolment = await service.create_operator(db, MasterKeyRing(old), email, "operator password 1")
    # A ring that cannot unwrap some secrets rewraps the others and says how many it could not.
    with pytest.raises(MasterKeyError, match="could not be unwrapped"):
        await service.rewrap_totp_secrets(db, MasterKeyRing(new, (old,)))
    await service.rewrap_totp_secrets(db, MasterKeyRing(new, (old, dev)))
    assert await service.rewrap_totp_secrets(db, MasterKeyRing(new, (old, dev))) == 0  # nothing left
    async with db.admin_engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id, totp_secret_wrapped, totp_master_key_id FROM platform.operators"
                    " WHERE email = :e"
                ),
                {"e": email},
            )
        ).one()
    # Back under the key the app uses, so the other tests' operators still sign in.
    assert await service.rewrap_totp_secrets(db, MasterKeyRing(dev, (new,))) >= 1
    assert row.totp_master_key_id == new.id
    # The old key is no longer needed: the new one alone unwraps the same secret.
    assert (
        totp.unwrap_secret(MasterKeyRing(new), str(row.id), row.totp_secret_wrapped, new.id)
        == enrolment.secret
    )
    with pytest.raises(MasterKeyError):
        totp.unwrap_secret(MasterKeyRing(old), str(row.id), row.totp_secret_wrapped, new.id)


async def test_the_demo_operator_is_made_again_with_a_new_secret_each_run(client, db, settings):
    from tenantcrm.pii.keys import master_key_ring

    email = f"demo-{pyotp.random_base32()[:8].lower()}@platform.example"
    first = await service.ensure_demo_operator(db, master_key_ring(settings), email, "demo-password")
    await service.disable_operator(db, email)
    second = await service.ensure_demo_operator(db, master_key_ring(settings), email, "demo-password")
    assert second.secret != first.secret
    demo = OperatorFixture(email, "demo-password", second.secret)
    await console_sign_in(client, demo)  # enabled again, with the new secret
