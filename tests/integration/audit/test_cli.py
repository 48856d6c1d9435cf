"""`tenantcrm audit verify SLUG`: exit 0 with the chain length, exit 1 naming the first break."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys

import pytest

from tenantcrm.audit.cli import register
from tenantcrm.cli import CommandError
from tests.integration.audit.helpers import seed_events, superuser_edit


@pytest.fixture
def cli_env(settings, database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTCRM_")}
    env.update(
        DATABASE_URL=database_url,
        TENANTCRM_APP_ROLE=settings.app_role,
        TENANTCRM_DATA_DIR=str(settings.data_dir),
        TENANTCRM_SECRET_KEY=settings.secret_key,
    )
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tenantcrm.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_verify_command_reports_an_intact_chain_then_the_first_break(cli_env, db, fresh_tenant):
    slug = fresh_tenant.slug
    await seed_events(db, fresh_tenant.tenant, 5)
    intact = await asyncio.to_thread(run_cli, cli_env, "audit", "verify", slug)
    assert intact.returncode == 0, intact.stderr
    assert json.loads(intact.stdout) == {"tenant": slug, "length": 5, "intact": True}

    await superuser_edit(db, fresh_tenant.tenant, "UPDATE {events} SET changes = '{{}}' WHERE seq = 3")
    broken = await asyncio.to_thread(run_cli, cli_env, "audit", "verify", slug)
    assert broken.returncode == 1
    assert json.loads(broken.stdout) == {"tenant": slug, "length": 5, "intact": False, "first_broken_seq": 3}
    assert broken.stderr.strip().splitlines() == [f"error: audit chain of {slug} broken at sequence 3"]


async def test_verify_command_refuses_an_unknown_tenant_in_one_line(cli_env):
    result = await asyncio.to_thread(run_cli, cli_env, "audit", "verify", "no-such-tenant")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["error: unknown tenant 'no-such-tenant'"]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tenantcrm")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_verify_handler_in_process(settings, db, fresh_tenant, capsys):
    await seed_events(db, fresh_tenant.tenant, 4)
    args = _parse("audit", "verify", fresh_tenant.slug)
    assert await asyncio.to_thread(args.run, settings, args) == 0
    assert json.loads(capsys.readouterr().out) == {"tenant": fresh_tenant.slug, "length": 4, "intact": True}

    await superuser_edit(db, fresh_tenant.tenant, "DELETE FROM {events} WHERE seq = 2")
    assert await asyncio.to_thread(args.run, settings, args) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["first_broken_seq"] == 2
    assert captured.err == f"error: audit chain of {fresh_tenant.slug} broken at sequence 2\n"

    unknown = _parse("audit", "verify", "no-such-tenant")
    with pytest.raises(CommandError, match="unknown tenant"):
        await asyncio.to_thread(unknown.run, settings, unknown)
