"""`tenantcrm audit ...`: platform support's checks of a tenant's audit chain.

Registered into the main parser by `tenantcrm.cli.build_parser` through `register()`.
The output names sequence numbers and counts only, never an event's content (no tenant PII);
`checkpoint_seq` appears once retention has removed events up to it (ADR 0011).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from tenantcrm.settings import Settings


def register(subcommands: Any) -> None:
    """Add the `audit` command group to the main parser's subparsers object."""
    audit = subcommands.add_parser("audit", help="check tenants' audit logs")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify",
        help="walk a tenant's audit hash chain from its latest checkpoint; exit 1 naming the first broken"
        " sequence number",
    )
    verify.add_argument("slug")
    verify.set_defaults(run=audit_verify)


def audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: tenantcrm.cli imports this module to register the command.
    from tenantcrm.audit.service import verify
    from tenantcrm.cli import CommandError
    from tenantcrm.runtime import open_database
    from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle
    from tenantcrm.tenancy.session import tenant_session

    async def work() -> int:
        async with open_database(settings) as db:
            try:
                tenant = await TenantLifecycle(db, settings).get(args.slug)
            except ProvisioningError as exc:
                raise CommandError(str(exc)) from exc
            if tenant.status not in ("active", "suspended"):
                raise CommandError(f"tenant {args.slug!r} is {tenant.status}")
            async with tenant_session(db, tenant) as session:
                result = await verify(session)
        report: dict[str, Any] = {"tenant": tenant.slug, "length": result.length, "intact": result.intact}
        if result.checkpoint_seq:
            report["checkpoint_seq"] = result.checkpoint_seq
        if not result.intact:
            report["first_broken_seq"] = result.first_broken_seq
            if result.broken_checkpoint:
                report["broken_checkpoint"] = True
        print(json.dumps(report, ensure_ascii=False))
        if not result.intact:
            where = "the checkpoint at sequence" if result.broken_checkpoint else "sequence"
            print(
                f"error: audit chain of {tenant.slug} broken at {where} {result.first_broken_seq}",
                file=sys.stderr,
            )
            return 1
        return 0

    return asyncio.run(work())
