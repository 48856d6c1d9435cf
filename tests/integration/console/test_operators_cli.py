"""`tenantcrm operators`: create (TOTP URI shown once), list, disable, reset-mfa; one-line errors."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from tests.integration.tenancy import test_cli

cli_env = test_cli.cli_env  # the fixture: the CLI's environment for this run's database
run_cli = test_cli.run_cli

PASSWORD = "operator password 1"


def _email() -> str:
    return f"cli-ops-{secrets.token_hex(3)}@platform.example"


async def _operator(db, email: str):
    async with db.admin_engine.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM platform.operators WHERE email = :e"), {"e": email})
        ).first()


def _create(env, email: str, password: str = PASSWORD):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", "operators", "create", email],
        env=env,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_create_prints_the_provisioning_uri_once_and_list_shows_the_operator(cli_env, db):
    email = _email()
    created = _create(cli_env, email.upper())
    assert created.returncode == 0, created.stderr
    uri = created.stdout.strip()
    assert uri.startswith("otpauth://totp/tenantcrm:")
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    assert secret in created.stderr  # for typing in by hand
    row = await _operator(db, email)
    assert row.status == "active" and not row.totp_enabled
    assert secret.encode() not in bytes(row.totp_secret_wrapped) and PASSWORD not in row.password_hash

    listing = run_cli(cli_env, "operators", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    mine = next(o for o in json.loads(listing.stdout) if o["email"] == email)
    assert mine["status"] == "active" and mine["mfa"] == "not yet used"


async def test_bad_input_is_one_line_on_stderr_and_writes_nothing(cli_env, db):
    email = _email()
    short = _create(cli_env, email, "short")
    assert short.returncode == 1 and short.stdout == ""
    assert short.stderr.strip().count("\n") == 0 and "at least 10 characters" in short.stderr
    assert await _operator(db, email) is None
    invalid = _create(cli_env, "not-an-address")
    assert invalid.returncode == 1 and invalid.stderr.startswith("error: invalid e-mail address")
    assert _create(cli_env, email).returncode == 0
    twice = _create(cli_env, email)
    assert twice.returncode == 1 and "already exists" in twice.stderr
    unknown = run_cli(cli_env, "operators", "disable", "nobody@platform.example")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no operator nobody@platform.example"


async def test_disable_and_reset_mfa(cli_env, db):
    email = _email()
    first = _create(cli_env, email)
    reset = run_cli(cli_env, "operators", "reset-mfa", email)
    assert reset.returncode == 0, reset.stderr
    assert reset.stdout.strip() != first.stdout.strip()  # a new secret
    disabled = run_cli(cli_env, "operators", "disable", email)
    assert disabled.returncode == 0 and json.loads(disabled.stdout) == {"email": email, "status": "disabled"}
    assert (await _operator(db, email)).status == "disabled"
    async with db.admin_engine.connect() as conn:
        actions = (
            await conn.scalars(
                text(
                    "SELECT action FROM platform.operator_events WHERE actor = 'cli'"
                    " AND details->>'operator' = :id ORDER BY id"
                ),
                {"id": str((await _operator(db, email)).id)},
            )
        ).all()
    assert actions == ["operator.create", "operator.reset_mfa", "operator.disable"]
