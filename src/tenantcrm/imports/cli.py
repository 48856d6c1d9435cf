"""The `tenantcrm import` and `tenantcrm worker` commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from tenantcrm.settings import Settings

PROBLEMS_SHOWN = 20


def register(subcommands: Any, command_error: type[Exception]) -> None:
    """Add `import` and `worker` to the top-level subparsers (given the CLI's CommandError, as
    tenantcrm.pii.cli explains)."""
    error = command_error

    def import_command(settings: Settings, args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        from tenantcrm.auth.service import find_user_by_email, principal_for_user
        from tenantcrm.imports.models import ImportJob
        from tenantcrm.imports.service import ImportService, row_errors, run_import
        from tenantcrm.pii.store import cipher_source
        from tenantcrm.runtime import open_database
        from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle
        from tenantcrm.tenancy.session import tenant_session
        from tenantcrm.validation import InvalidInput

        path = Path(args.file)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise error(f"cannot read {path.name}: {exc.strerror}") from exc

        def progress(job: ImportJob) -> None:
            if not args.json:
                print(f"checked {job.staged_rows}/{job.total_rows} rows", file=sys.stderr, flush=True)

        async def work() -> int:
            async with open_database(settings) as db:
                lifecycle = TenantLifecycle(db, settings)
                try:
                    tenant = await lifecycle.get(args.slug)
                    ring = lifecycle.ring()
                except ProvisioningError as exc:
                    raise error(str(exc)) from exc
                if not tenant.active:
                    raise error(f"tenant {args.slug!r} is {tenant.status}")
                principal = None
                if args.as_user:
                    async with tenant_session(db, tenant) as session:
                        user = await find_user_by_email(session, args.as_user)
                        principal = await principal_for_user(session, tenant, user.id) if user else None
                    if principal is None:
                        raise error(f"no active user {args.as_user!r} in tenant {args.slug!r}")
                cipher = cipher_source(db, ring, tenant)
                try:
                    job = await run_import(
                        db,
                        cipher,
                        tenant,
                        principal,
                        path.name,
                        content,
                        kind=args.kind,
                        mode=args.mode,
                        progress=progress,
                    )
                except InvalidInput as invalid:
                    raise error(f"{invalid.errors[0].field}: {invalid.errors[0].text()}") from invalid
                except SQLAlchemyError as exc:
                    raise error(f"the import failed ({type(exc).__name__}); run it again") from exc
                async with tenant_session(db, tenant) as session:
                    shown = await ImportService(session, None, cipher).preview(job.id, PROBLEMS_SHOWN)
                    problems = [
                        {"row": row.row_number, "field": e.field, "code": e.code, "problem": e.text()}
                        for row in shown["problems"]
                        for e in row_errors(row)
                    ]
            summary = {
                "job_id": str(job.id),
                "status": job.status,
                "rows": job.valid_rows + job.problem_rows,
                "valid": job.valid_rows,
                "invalid": job.invalid_rows,
                "duplicate": job.duplicate_rows,
                "created": job.created_rows,
                "problems": problems[:PROBLEMS_SHOWN],
            }
            if args.json:
                print(json.dumps(summary, ensure_ascii=False))
            else:
                print(
                    f"{job.status}: {job.created_rows} customers created; {job.valid_rows} rows valid,"
                    f" {job.invalid_rows} invalid, {job.duplicate_rows} duplicates"
                )
                for problem in problems[:PROBLEMS_SHOWN]:
                    print(f"  row {problem['row']} {problem['field']}: {problem['problem']}")
            if job.status == "failed" and job.error:
                print(f"error: {job.error}", file=sys.stderr)
            return 0 if job.status == "done" else 1

        return asyncio.run(work())

    def worker_command(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.jobs.worker import run_pending, serve_jobs
        from tenantcrm.pii.keys import MasterKeyError, master_key_ring
        from tenantcrm.runtime import open_database

        try:
            ring = master_key_ring(settings)
        except MasterKeyError as exc:
            raise error(str(exc)) from exc

        async def work() -> int:
            async with open_database(settings) as db:
                if args.drain:
                    await run_pending(db, ring)
                    return 0
                from tenantcrm.observability.logs import configure_logging

                configure_logging(settings)
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                print("tenantcrm worker taking jobs (Ctrl-C stops)", file=sys.stderr, flush=True)
                await serve_jobs(db, settings, ring, stop)
            return 0

        return asyncio.run(work())

    importer = subcommands.add_parser("import", help="import customers (and loans) from .xlsx or .csv")
    importer.add_argument("slug")
    importer.add_argument("file")
    importer.add_argument("--mode", choices=("skip_invalid", "all_or_nothing"), default="skip_invalid")
    importer.add_argument("--kind", choices=("customers", "loans"), default="customers")
    importer.add_argument(
        "--as", dest="as_user", metavar="EMAIL", help="act as this user (owner of the new customers)"
    )
    importer.add_argument("--json", action="store_true")
    importer.set_defaults(run=import_command)
    worker = subcommands.add_parser("worker", help="take background jobs (imports) from the queue")
    worker.add_argument("--drain", action="store_true", help="run what is queued, then exit")
    worker.set_defaults(run=worker_command)
