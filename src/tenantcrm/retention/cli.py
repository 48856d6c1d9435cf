"""`tenantcrm retention run`: apply (or, with --dry-run, count) the retention policies of one
tenant or of every active one, as platform support. Prints counts, never a customer's data."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from typing import Any

from tenantcrm.settings import Settings


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


def register(subcommands: Any, command_error: type[Exception]) -> None:
    """Add the `retention` group to the top-level subparsers (given the CLI's CommandError, as
    tenantcrm.pii.cli explains)."""
    error = command_error

    def run_command(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.retention.service import plan_retention, run_retention
        from tenantcrm.runtime import open_database
        from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle
        from tenantcrm.tenancy.session import tenant_session
        from tenantcrm.tenancy.tenant import Tenant

        if bool(args.slug) == bool(args.all):
            raise error("give one tenant slug or --all")
        try:
            as_of = date.fromisoformat(args.as_of) if args.as_of else date.today()
        except ValueError:
            raise error("--as-of must be a date (YYYY-MM-DD)") from None

        async def one(db: Any, tenant: Tenant) -> dict[str, Any]:
            async with tenant_session(db, tenant) as session:
                if args.dry_run:
                    result = await plan_retention(session, as_of)
                else:
                    result = await run_retention(session, as_of, trigger="cli")
                    assert result is not None
            report = {"tenant": tenant.slug, "status": "ok", **result.as_dict()}
            if result.run_id is not None:
                report["run_id"] = str(result.run_id)
            return report

        def show(report: dict[str, Any]) -> None:
            if args.json:
                return
            if report["status"] != "ok":
                print(f"{report['tenant']}: failed ({report['error']})")
                return
            counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items()) or "no policy enabled"
            print(f"{report['tenant']}: {counts}{' (dry run, nothing changed)' if args.dry_run else ''}")

        async def work() -> int:
            async with open_database(settings) as db:
                lifecycle = TenantLifecycle(db, settings)
                if not args.all:
                    try:
                        tenant = await lifecycle.get(args.slug)
                    except ProvisioningError as exc:
                        raise error(str(exc)) from exc
                    if tenant.status not in ("active", "suspended"):
                        raise error(f"tenant {args.slug!r} is {tenant.status}")
                    try:
                        report = await one(db, tenant)
                    except Exception as exc:
                        # The type only: a database error's message may quote a value.
                        raise error(f"retention failed for {tenant.slug} ({type(exc).__name__})") from None
                    if args.json:
                        _print_json(report)
                    else:
                        show(report)
                    return 0
                reports: list[dict[str, Any]] = []
                for listed in await lifecycle.list_tenants():
                    if listed["status"] != "active":
                        continue
                    tenant = await lifecycle.get(str(listed["slug"]))
                    try:
                        report = await one(db, tenant)
                    except Exception as exc:
                        report = {"tenant": tenant.slug, "status": "failed", "error": type(exc).__name__}
                    reports.append(report)
                    show(report)
            if args.json:
                _print_json(reports)
            failed = [r["tenant"] for r in reports if r["status"] != "ok"]
            if failed:
                print(f"error: retention failed for {', '.join(failed)}", file=sys.stderr)
                return 1
            return 0

        return asyncio.run(work())

    retention = subcommands.add_parser("retention", help="retention policies")
    commands = retention.add_subparsers(dest="retention_command", required=True)
    run = commands.add_parser(
        "run", help="apply the enabled retention policies of a tenant (or every active one with --all)"
    )
    run.add_argument("slug", nargs="?")
    run.add_argument("--all", action="store_true")
    run.add_argument("--dry-run", action="store_true", help="count what a run would do; change nothing")
    run.add_argument("--json", action="store_true")
    run.add_argument("--as-of", help="the day to age data against (YYYY-MM-DD, default today)")
    run.set_defaults(run=run_command)
