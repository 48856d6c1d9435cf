"""`tenantcrm keys …`: JSON on stdout, one-line errors through the CLI's CommandError."""

import argparse
import asyncio
import json

import pytest

from tenantcrm.cli import CommandError
from tenantcrm.pii.cli import register
from tests.integration.pii.test_rotation import fill


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tenantcrm")
    register(parser.add_subparsers(dest="command", required=True), CommandError)
    return parser.parse_args(argv)


async def run(settings, *argv: str) -> int:
    args = parse(*argv)
    # The command runs its own event loop, as it does under `tenantcrm`.
    return await asyncio.to_thread(args.run, settings, args)


async def test_rotate_tenant_prints_the_counts_as_json(db, ring, settings, keyed_tenant, capsys):
    await fill(db, ring, keyed_tenant, count=30)
    capsys.readouterr()
    assert (
        await run(settings, "keys", "rotate-tenant", keyed_tenant.slug, "--batch-size", "20", "--json") == 0
    )
    out = capsys.readouterr()
    assert json.loads(out.out) == {
        "tenant": keyed_tenant.slug,
        "from_versions": [1],
        "to_version": 2,
        "rows_reencrypted": 30,
        "batches": 2,
        "rows_remaining": 0,
    }
    assert await run(settings, "keys", "rotate-tenant", keyed_tenant.slug) == 0
    out = capsys.readouterr()
    assert "to 3" in out.out and "batch 1, 30/30 rows" in out.err


async def test_rotate_master_reports_the_key_id(db, ring, settings, capsys):
    assert await run(settings, "keys", "rotate-master") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["master_key_id"] == ring.key_id and isinstance(result["rewrapped"], int)


async def test_errors_are_command_errors(db, settings):
    with pytest.raises(CommandError, match="unknown tenant"):
        await run(settings, "keys", "rotate-tenant", "no-such-tenant")
    with pytest.raises(CommandError, match="at least 1"):
        await run(settings, "keys", "rotate-tenant", "whatever", "--batch-size", "0")
