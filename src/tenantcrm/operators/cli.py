"""The `tenantcrm operators` commands: create, list, disable, reset-mfa."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from tenantcrm.settings import Settings


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, default=str))


def read_password(prompt: bool) -> str:
    """From the terminal (asked twice), or the first line of standard input when it is not one."""
    if not prompt:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the operator: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _show_enrolment(enrolment: Any, heading: str) -> None:
    # Shown once: the secret exists in clear nowhere else (the database holds it wrapped).
    print(heading, file=sys.stderr)
    print("Add it to an authenticator app (scan it as a QR code or type the secret in):", file=sys.stderr)
    print(enrolment.provisioning_uri)
    print(f"secret: {enrolment.secret}", file=sys.stderr)


def register(subcommands: Any, command_error: type[Exception]) -> None:
    """Add the `operators` group to the top-level subparsers (see pii.cli.register on the error class)."""
    error = command_error

    def run(settings: Settings, work: Any) -> int:
        from tenantcrm.operators.service import OperatorError
        from tenantcrm.pii.keys import MasterKeyError
        from tenantcrm.runtime import open_database

        async def main() -> int:
            async with open_database(settings) as db:
                return await work(db)

        try:
            return asyncio.run(main())
        except (OperatorError, MasterKeyError) as exc:
            raise error(str(exc)) from exc

    def create(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.operators.service import create_operator
        from tenantcrm.pii.keys import MasterKeyError, master_key_ring

        try:
            ring = master_key_ring(settings)  # before anything is asked or written
            password = read_password(sys.stdin.isatty())
        except (MasterKeyError, ValueError) as exc:
            raise error(str(exc)) from exc

        async def work(db: Any) -> int:
            enrolment = await create_operator(db, ring, args.email, password)
            _show_enrolment(enrolment, f"operator {enrolment.email} created; TOTP (shown once):")
            return 0

        return run(settings, work)

    def listing(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.operators.service import list_operators

        async def work(db: Any) -> int:
            operators = await list_operators(db)
            if args.json:
                _print_json(operators)
            else:
                for o in operators:
                    print(
                        f"{o['email']:<40} {o['status']:<9} mfa {o['mfa']:<13}"
                        f" last sign-in {o['last_sign_in_at'] or '-'}"
                    )
            return 0

        return run(settings, work)

    def disable(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.operators.service import disable_operator

        async def work(db: Any) -> int:
            await disable_operator(db, args.email)
            _print_json({"email": args.email.strip().lower(), "status": "disabled"})
            return 0

        return run(settings, work)

    def reset_mfa(settings: Settings, args: argparse.Namespace) -> int:
        from tenantcrm.operators.service import reset_mfa as reset
        from tenantcrm.pii.keys import MasterKeyError, master_key_ring

        try:
            ring = master_key_ring(settings)
        except MasterKeyError as exc:
            raise error(str(exc)) from exc

        async def work(db: Any) -> int:
            enrolment = await reset(db, ring, args.email)
            _show_enrolment(enrolment, f"new TOTP secret for {enrolment.email}; the old one no longer works:")
            return 0

        return run(settings, work)

    operators = subcommands.add_parser("operators", help="platform operators (the console at /platform/)")
    commands = operators.add_subparsers(dest="operators_command", required=True)
    sub = commands.add_parser(
        "create", help="create an operator (password from the prompt or stdin); prints the TOTP URI once"
    )
    sub.add_argument("email")
    sub.set_defaults(run=create)
    sub = commands.add_parser("list", help="list operators")
    sub.add_argument("--json", action="store_true")
    sub.set_defaults(run=listing)
    sub = commands.add_parser("disable", help="disable an operator and end their sessions")
    sub.add_argument("email")
    sub.set_defaults(run=disable)
    sub = commands.add_parser("reset-mfa", help="give an operator a new TOTP secret (prints it once)")
    sub.add_argument("email")
    sub.set_defaults(run=reset_mfa)
