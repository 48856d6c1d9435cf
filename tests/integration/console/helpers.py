"""Operators for the console tests, and signing in through the real two-step form."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx
import pyotp
from sqlalchemy import text

from tenantcrm.database import Database
from tenantcrm.operators import totp
from tenantcrm.operators.service import create_operator
from tenantcrm.pii.keys import master_key_ring
from tenantcrm.settings import Settings

OPERATOR_PASSWORD = "operator password 1"


@dataclass(frozen=True)
class OperatorFixture:
    email: str
    password: str
    secret: str

    def code(self, step_offset: int = 0) -> str:
        return pyotp.TOTP(self.secret).generate_otp(totp.current_step() + step_offset)


async def make_operator(db: Database, settings: Settings) -> OperatorFixture:
    email = f"ops-{secrets.token_hex(4)}@platform.example"
    enrolment = await create_operator(db, master_key_ring(settings), email, OPERATOR_PASSWORD)
    return OperatorFixture(email, OPERATOR_PASSWORD, enrolment.secret)


def csrf(client: httpx.AsyncClient) -> str:
    return client.cookies["csrftoken"]


async def enter_password(
    client: httpx.AsyncClient, operator: OperatorFixture, password: str | None = None
) -> httpx.Response:
    await client.get("/platform/login")
    return await client.post(
        "/platform/login",
        data={
            "email": operator.email,
            "password": password or operator.password,
            "_csrf_token": csrf(client),
        },
        follow_redirects=False,
    )


async def enter_code(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post(
        "/platform/login/code", data={"code": code, "_csrf_token": csrf(client)}, follow_redirects=False
    )


async def console_sign_in(client: httpx.AsyncClient, operator: OperatorFixture) -> None:
    assert (await enter_password(client, operator)).status_code == 303
    response = await enter_code(client, operator.code())
    assert response.status_code == 303 and response.headers["location"] == "/platform/", response.text


async def events(db: Database, **where: str) -> list[dict]:
    """Operator events matching column = value, oldest first."""
    clause = " AND ".join(f"{column} = :{column}" for column in where) or "true"
    async with db.admin_engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT * FROM platform.operator_events WHERE {clause} ORDER BY id"),
            where,
        )
        return [dict(row._mapping) for row in rows]
