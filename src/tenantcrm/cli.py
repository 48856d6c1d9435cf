"""The `tenantcrm` command: tenants, tokens, serving, the demo, imports and the job worker."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from tenantcrm.settings import Settings


class CommandError(Exception):
    """A one-line message for stderr; the command exits non-zero."""


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


async def _with_lifecycle(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    from tenantcrm.runtime import open_database
    from tenantcrm.tenancy.provisioning import ProvisioningError, TenantLifecycle

    async with open_database(settings) as db:
        try:
            return await work(TenantLifecycle(db, settings))
        except ProvisioningError as exc:
            raise CommandError(str(exc)) from exc


def tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(lifecycle: Any) -> int:
        created = await lifecycle.create(
            args.slug, name=args.name, admin_email=args.admin_email, admin_password=args.admin_password
        )
        _print_json(created.as_dict())
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(lifecycle: Any) -> int:
        tenants = await lifecycle.list_tenants(spares=args.spares)
        if args.json:
            _print_json(tenants)
        else:
            for t in tenants:
                print(f"{t['slug']:<24} {t['status']:<13} {t['schema']:<20} {t['schema_version']}")
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_spares(settings: Settings, args: argparse.Namespace) -> int:
    keep = settings.spare_tenants if args.keep is None else args.keep
    if keep < 0:
        raise CommandError("--keep must be 0 or more")

    async def work(lifecycle: Any) -> int:
        pool = await lifecycle.top_up_spares(keep)
        if args.json:
            _print_json(pool.as_dict())
        else:
            busy = " (another top-up is running)" if pool.busy else ""
            print(f"spares: {pool.ready} ready, {pool.behind} behind head, {pool.made} made{busy}")
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_status(status: str) -> Callable[[Settings, argparse.Namespace], int]:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        async def work(lifecycle: Any) -> int:
            tenant = await lifecycle.set_status(args.slug, status)
            _print_json({"slug": tenant.slug, "status": tenant.status})
            return 0

        return asyncio.run(_with_lifecycle(settings, work))

    return run


def tenants_delete(settings: Settings, args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandError("refusing to delete without --yes (this destroys the tenant's data)")

    async def work(lifecycle: Any) -> int:
        await lifecycle.delete(args.slug)
        _print_json({"slug": args.slug, "deleted": True})
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if bool(args.slug) == bool(args.all):
        raise CommandError("give one tenant slug or --all")

    if args.concurrency < 1:
        raise CommandError("--concurrency must be at least 1")

    async def work(lifecycle: Any) -> int:
        from tenantcrm.tenancy.migrate_all import migrate_all

        if args.all:
            outcomes = await migrate_all(lifecycle, args.concurrency)
        else:
            outcomes = await lifecycle.migrate(args.slug)
        if args.json:
            _print_json([o.__dict__ for o in outcomes])
        else:
            for o in outcomes:
                detail = f" ({o.error})" if o.error else ""
                print(f"{o.slug}: {o.status} {o.from_version} -> {o.to_version}{detail}")
        failed = [o.slug for o in outcomes if o.status == "failed"]
        if failed:
            print(f"error: migration failed for {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def _quota_value(flag: str, text: str | None) -> Any:
    """A quota as given on the command line: a whole number, `none` for no limit, or unchanged."""
    from tenantcrm.tenancy.quotas import KEEP

    if text is None:
        return KEEP
    if text.strip().lower() == "none":
        return None
    if not (text.strip().isascii() and text.strip().isdigit()):
        raise CommandError(f"{flag} takes a whole number of 0 or more, or none")
    return int(text)


def tenants_quota(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.tenancy.quotas import KEEP, get_quotas, set_quotas
    from tenantcrm.validation import InvalidInput

    changes = {
        "users": _quota_value("--users", args.users),
        "customers": _quota_value("--customers", args.customers),
        "storage_mb": _quota_value("--storage-mb", args.storage_mb),
    }

    async def work(lifecycle: Any) -> int:
        tenant = await lifecycle.get(args.slug)
        try:
            quotas = (
                await set_quotas(lifecycle.db, tenant, **changes)
                if any(v is not KEEP for v in changes.values())
                else await get_quotas(lifecycle.db, tenant)
            )
        except InvalidInput as invalid:
            raise CommandError(f"{invalid.errors[0].field}: {invalid.errors[0].text()}") from invalid
        if args.json:
            _print_json({"slug": tenant.slug, **quotas.as_dict()})
        else:
            for name, entry in quotas.as_dict().items():
                limit = "no limit" if entry["limit"] is None else entry["limit"]
                print(f"{name:<12} {entry['used']} / {limit}")
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from tenantcrm.tenancy.backup import backup

    async def work(lifecycle: Any) -> int:
        _print_json((await backup(lifecycle, args.slug, Path(args.file))).as_dict())
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tenants_restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from tenantcrm.tenancy.backup import restore

    async def work(lifecycle: Any) -> int:
        _print_json((await restore(lifecycle, Path(args.file), args.as_slug)).as_dict())
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def tokens_create(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.audit import service as audit
    from tenantcrm.auth.service import create_api_token, find_user_by_email
    from tenantcrm.tenancy.session import tenant_session

    async def work(lifecycle: Any) -> int:
        tenant = await lifecycle.get(args.tenant)
        if tenant.status not in ("active", "suspended"):
            raise CommandError(f"tenant {args.tenant!r} is {tenant.status}")
        async with tenant_session(lifecycle.db, tenant) as session:
            user = await find_user_by_email(session, args.email)
            if user is None or user.status != "active":
                raise CommandError(f"no active user {args.email!r} in tenant {args.tenant!r}")
            token = await create_api_token(session, tenant, user, args.name)
            await audit.record(
                session,
                actor=None,
                actor_label="cli",
                action=audit.CREATE,
                entity_type="api_token",
                entity_id=args.name,
                changes={"user": str(user.id), "permissions": "all"},
            )
        print(f"token for {user.email} in {tenant.slug} (shown once, stored hashed):", file=sys.stderr)
        print(token)
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def users_create(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.auth.admin_service import create_user_record
    from tenantcrm.tenancy.session import tenant_session
    from tenantcrm.validation import InvalidInput

    async def work(lifecycle: Any) -> int:
        tenant = await lifecycle.get(args.tenant)
        if tenant.status not in ("active", "suspended"):
            raise CommandError(f"tenant {args.tenant!r} is {tenant.status}")
        try:
            async with tenant_session(lifecycle.db, tenant) as session:
                created = await create_user_record(
                    session,
                    tenant,
                    email=args.email,
                    role=args.role,
                    password=args.password,
                    actor_label="cli",
                )
        except InvalidInput as invalid:
            raise CommandError(f"{invalid.errors[0].field}: {invalid.errors[0].text()}") from invalid
        result = {"email": created.email, "role": created.role}
        if created.password:
            result["password"] = created.password
        _print_json(result)
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def segments_refresh(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.loans.summary_service import rebuild_summaries

    async def work(lifecycle: Any) -> int:
        tenant = await lifecycle.get(args.slug)
        if tenant.status not in ("active", "suspended"):
            raise CommandError(f"tenant {args.slug!r} is {tenant.status}")
        stale = await rebuild_summaries(lifecycle.db, tenant)
        print(f"{tenant.slug}: stored loan figures rebuilt, {stale} rows were stale")
        return 0

    return asyncio.run(_with_lifecycle(settings, work))


def serve(settings: Settings, args: argparse.Namespace) -> int:
    import gc

    import uvicorn

    from tenantcrm.app import create_app
    from tenantcrm.observability.logs import configure_logging
    from tenantcrm.runtime import admin_url_for

    configure_logging(settings)
    host, port = args.host or settings.host, args.port or settings.port
    app = create_app(settings, admin_url_for(settings))
    # What is built by now (modules, the GraphQL schema, mappers, templates: about 240,000 objects)
    # lives as long as the process: frozen, the cycle collector no longer walks it. Each full
    # collection took 150-190 ms of a request, every 50 or so customer lists (their p99, issue 8).
    gc.collect()
    gc.freeze()
    print(f"tenantcrm serving on http://{host}:{port}/", file=sys.stderr)
    # Client addresses (sign-in throttling) come from X-Forwarded-For only via listed proxies.
    proxies = settings.trusted_proxies
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through configure_logging's handler
        access_log=False,  # its access line has the raw path and query; ours has neither
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    return 0


DEMO_OPERATOR = "operator@demo.example"


def demo(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.demo import ensure_demo_tenant
    from tenantcrm.operators.service import ensure_demo_operator
    from tenantcrm.pii.keys import master_key_ring
    from tenantcrm.runtime import open_database

    async def seed() -> Any:
        async with open_database(settings) as db:
            tenant = await ensure_demo_tenant(db, settings)
            ring = master_key_ring(settings)
            operator = await ensure_demo_operator(db, ring, DEMO_OPERATOR, tenant.password)
            return tenant, operator

    info, operator = asyncio.run(seed())
    host, port = args.host or settings.host, args.port or settings.port
    print(
        f"\n  tenantcrm demo: http://{host}:{port}/t/{info.slug}/login\n"
        f"  sign in as {info.admin_email} (admin) or {info.officer_email} (loan officer),"
        f" password {info.password}\n"
        f"  GraphQL: curl -s http://{host}:{port}/graphql -H 'Authorization: Bearer"
        f" {info.api_token}' -H 'Content-Type: application/json'"
        ' -d \'{"query": "{ customers(first: 3) { totalCount edges { node { name } } } }"}\'\n'
        f"  platform console: http://{host}:{port}/platform/ as {operator.email}, password {info.password},\n"
        f"  then a code from an authenticator app given the TOTP secret {operator.secret}\n"
        f"  (demo only; a new secret every run): {operator.provisioning_uri}\n",
        file=sys.stderr,
    )
    if args.no_serve:
        return 0
    return serve(settings, args)


def graphql_schema(settings: Settings, args: argparse.Namespace) -> int:
    from tenantcrm.graphql.schema import SDL_PATH, export_sdl

    sdl = export_sdl()
    if args.write:
        SDL_PATH.write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenantcrm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tenants = commands.add_parser("tenants", help="provision and operate tenants")
    tenant_commands = tenants.add_subparsers(dest="tenants_command", required=True)
    create = tenant_commands.add_parser("create", help="provision a tenant (resumes a crashed run)")
    create.add_argument("slug")
    create.add_argument("--name", required=True)
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-password")
    create.set_defaults(run=tenants_create)
    listing = tenant_commands.add_parser("list", help="list tenants")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--spares", action="store_true", help="include spare schemas (ADR 0014)")
    listing.set_defaults(run=tenants_list)
    spares = tenant_commands.add_parser(
        "spares", help="provision spare tenants until N are ready, so creates claim one (ADR 0014)"
    )
    spares.add_argument(
        "--keep", type=int, metavar="N", help="spares to keep ready (default TENANTCRM_SPARE_TENANTS)"
    )
    spares.add_argument("--json", action="store_true")
    spares.set_defaults(run=tenants_spares)
    for name, status in (("suspend", "suspended"), ("resume", "active")):
        sub = tenant_commands.add_parser(name, help=f"{name} a tenant")
        sub.add_argument("slug")
        sub.set_defaults(run=tenants_status(status))
    delete = tenant_commands.add_parser("delete", help="drop a tenant's schema, role and data")
    delete.add_argument("slug")
    delete.add_argument("--yes", action="store_true")
    delete.set_defaults(run=tenants_delete)
    migrate = tenant_commands.add_parser("migrate", help="migrate one tenant or all")
    migrate.add_argument("slug", nargs="?")
    migrate.add_argument("--all", action="store_true")
    migrate.add_argument("--json", action="store_true")
    migrate.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="N",
        help="tenants migrated at once with --all (1; more pays only where the database has its own cores)",
    )
    migrate.set_defaults(run=tenants_migrate)
    quota = tenant_commands.add_parser(
        "quota", help="show a tenant's quotas and usage, or set them (N, or none for no limit)"
    )
    quota.add_argument("slug")
    for flag in ("--users", "--customers", "--storage-mb"):
        quota.add_argument(flag, metavar="N")
    quota.add_argument("--json", action="store_true")
    quota.set_defaults(run=tenants_quota)
    backup = tenant_commands.add_parser("backup", help="write a tenant's data, wrapped keys and registry row")
    backup.add_argument("slug")
    backup.add_argument("file")
    backup.set_defaults(run=tenants_backup)
    restore = tenant_commands.add_parser(
        "restore", help="restore a backup into a new tenant (needs the same master key ring)"
    )
    restore.add_argument("file")
    restore.add_argument("--as", dest="as_slug", metavar="NEW_SLUG", help="slug of the restored copy")
    restore.set_defaults(run=tenants_restore)

    tokens = commands.add_parser("tokens", help="API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    token_create = token_commands.add_parser("create", help="create an API token for a user")
    token_create.add_argument("--tenant", required=True)
    token_create.add_argument("--email", required=True)
    token_create.add_argument("--name", default="cli")
    token_create.set_defaults(run=tokens_create)

    users = commands.add_parser("users", help="tenant users")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    user_create = user_commands.add_parser("create", help="create a user (password generated unless given)")
    user_create.add_argument("--tenant", required=True)
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--role", required=True, help="built-in or custom role name")
    user_create.add_argument("--password")
    user_create.set_defaults(run=users_create)

    segments = commands.add_parser("segments", help="segments")
    segment_commands = segments.add_subparsers(dest="segments_command", required=True)
    refresh = segment_commands.add_parser(
        "refresh", help="rebuild a tenant's stored per-customer loan figures (ADR 0010)"
    )
    refresh.add_argument("slug")
    refresh.set_defaults(run=segments_refresh)

    for name, run in (("serve", serve), ("demo", demo)):
        sub = commands.add_parser(name, help=f"{name} the web app")
        sub.add_argument("--host")
        sub.add_argument("--port", type=int)
        if name == "demo":
            sub.add_argument("--no-serve", action="store_true", help="seed only")
        sub.set_defaults(run=run)

    from tenantcrm.audit.cli import register as register_audit
    from tenantcrm.imports.cli import register as register_imports
    from tenantcrm.operators.cli import register as register_operators
    from tenantcrm.pii.cli import register as register_keys
    from tenantcrm.retention.cli import register as register_retention

    register_audit(commands)
    register_keys(commands, CommandError)
    register_imports(commands, CommandError)
    register_retention(commands, CommandError)
    register_operators(commands, CommandError)

    schema = commands.add_parser("graphql-schema", help="print (or --write) the GraphQL SDL")
    schema.add_argument("--write", action="store_true")
    schema.set_defaults(run=graphql_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(Settings.from_env(), args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback, no data
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run the importable module, so lazily imported handlers raise the CommandError main() catches.
    from tenantcrm.cli import main as _main

    sys.exit(_main())
