"""The `tenantcrm keys` commands: rotate the master key, rotate a tenant's data key."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from tenantcrm.settings import Settings


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


def register(subcommands: Any, command_error: type[Exception] | None = None) -> None:
    """Add the `keys` group to the top-level subparsers.

    Pass the CLI's CommandError: under `python -m tenantcrm.cli` the running module is
    `__main__`, so importing tenantcrm.cli from here would give a second, uncaught class.
    """
    if command_error is None:
        from tenantcrm.cli import CommandError as command_error
    error = command_error

    def rotate_master_command(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.operators.service import rewrap_totp_secrets
        from tenantcrm.pii.keys import MasterKeyError, master_key_ring
        from tenantcrm.pii.rotation import rotate_master
        from tenantcrm.runtime import open_database

        async def work() -> int:
            try:
                ring = master_key_ring(settings)
                async with open_database(settings) as db:
                    rewrapped = await rotate_master(db, ring)
                    # Operators' TOTP secrets are wrapped by the same ring (the console's MFA).
                    operators = await rewrap_totp_secrets(db, ring)
            except MasterKeyError as exc:
                raise error(str(exc)) from exc
            _print_json(
                {"master_key_id": ring.key_id, "rewrapped": rewrapped, "operators_rewrapped": operators}
            )
            return 0

        return asyncio.run(work())

    def rotate_tenant_command(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.pii.keys import MasterKeyError, master_key_ring
        from tenantcrm.pii.rotation import RotationError, RotationProgress, rotate_tenant
        from tenantcrm.pii.store import TenantKeysMissing
        from tenantcrm.runtime import open_database
        from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle

        if args.batch_size < 1:
            raise error("--batch-size must be at least 1")

        def report(step: RotationProgress) -> None:
            print(
                f"{step.table}: batch {step.batch}, {step.rows_done}/{step.rows_total} rows",
                file=sys.stderr,
                flush=True,
            )

        async def work() -> int:
            try:
                ring = master_key_ring(settings)
                async with open_database(settings) as db:
                    tenant = await TenantLifecycle(db, settings).get(args.slug)
                    if tenant.status not in ("active", "suspended"):
                        raise error(f"tenant {args.slug!r} is {tenant.status}")
                    result = await rotate_tenant(
                        db, ring, tenant, args.batch_size, None if args.json else report
                    )
            except (MasterKeyError, ProvisioningError, RotationError, TenantKeysMissing) as exc:
                raise error(str(exc)) from exc
            if args.json:
                _print_json(result)
            else:
                versions = ", ".join(map(str, result["from_versions"])) or "-"
                print(
                    f"{result['tenant']}: {result['rows_reencrypted']} rows from version(s) {versions}"
                    f" to {result['to_version']} in {result['batches']} batches,"
                    f" {result['rows_remaining']} left"
                )
            return 0

        return asyncio.run(work())

    keys = subcommands.add_parser("keys", help="PII encryption keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    master = key_commands.add_parser(
        "rotate-master", help="rewrap every tenant key with the current master key (rerunnable)"
    )
    master.set_defaults(run=rotate_master_command)
    rotate = key_commands.add_parser(
        "rotate-tenant", help="re-encrypt a tenant's PII under a new data key (resumes a crashed run)"
    )
    rotate.add_argument("slug")
    rotate.add_argument("--batch-size", type=int, default=500)
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(run=rotate_tenant_command)
