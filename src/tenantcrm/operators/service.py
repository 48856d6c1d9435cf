"""Operator accounts, two-step sign-in (password, then TOTP), console sessions and the event log.

Accounts are created, disabled and reset by the CLI on the admin connection; the app role may only
read them and record a sign-in (column privileges granted at bootstrap). Sessions work like tenant
web sessions: the cookie holds a 256-bit secret, the table only its SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit.service import to_jsonable
from tenantcrm.auth import throttle
from tenantcrm.auth.passwords import MAX_PASSWORD_LENGTH, hash_password, password_problem, verify_password
from tenantcrm.auth.service import SignInFailed, SignInThrottled, normalize_email
from tenantcrm.database import Database
from tenantcrm.operators import totp
from tenantcrm.operators.models import Operator, OperatorEvent, OperatorSession
from tenantcrm.pii.keys import KeyProvider, MasterKeyError
from tenantcrm.tenancy.session import unscoped_platform_session
from tenantcrm.tenancy.tenant import Tenant

SESSION_IDLE = timedelta(hours=8)
# Shorter than a tenant session's 24 hours: an operator session can provision and delete tenants.
SESSION_MAX_AGE = timedelta(hours=12)
SESSION_TOUCH_EVERY = timedelta(minutes=5)
# Between a right password and the code: long enough to open the authenticator app.
CODE_DUE_WITHIN = timedelta(minutes=5)
CODE_LIMIT = 5  # wrong codes per operator within the throttle window
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_.]{0,62}$")
EVENTS_PAGE = 50

ACTIVE = "active"
DISABLED = "disabled"


class OperatorError(Exception):
    """An account request that cannot be carried out; the message is safe to print."""


@dataclass(frozen=True, slots=True)
class OperatorPrincipal:
    """A signed-in operator (password and TOTP both passed); made only by `operator_from_session`."""

    id: uuid.UUID
    email: str

    @property
    def label(self) -> str:
        return self.email


@dataclass(frozen=True)
class Enrolment:
    """A new TOTP secret, shown once to the operator (CLI): the URI an authenticator app reads."""

    email: str
    secret: str
    provisioning_uri: str


def _digest(secret: str) -> bytes:
    # 256-bit random secrets: a fast hash suffices, nobody can guess one.
    return hashlib.sha256(secret.encode()).digest()


def account_key(email: str) -> str:
    # Its own namespace in the shared throttle table: never the same key as a tenant account.
    return "op:" + hashlib.sha256(f"operator|{email}".encode()).hexdigest()


def code_key(operator_id: uuid.UUID) -> str:
    return f"op-code:{operator_id}"


# --- accounts (CLI, admin connection) ---


async def create_operator(db: Database, ring: KeyProvider, email: str, password: str) -> Enrolment:
    email = normalize_email(email)
    if not EMAIL_PATTERN.fullmatch(email):
        raise OperatorError("invalid e-mail address")
    if problem := password_problem(password):
        raise OperatorError(problem)
    secret = totp.new_secret()
    password_hash = await hash_password(password)
    operator_id = uuid.uuid4()
    wrapped, key_id = _wrap(ring, operator_id, secret)
    async with AsyncSession(db.admin_engine) as session, session.begin():
        if await session.scalar(select(Operator.id).where(Operator.email == email)):
            raise OperatorError(f"operator {email} already exists")
        session.add(
            Operator(
                id=operator_id,
                email=email,
                password_hash=password_hash,
                totp_secret_wrapped=wrapped,
                totp_master_key_id=key_id,
            )
        )
        await _account_event(session, "operator.create", operator_id)
    return Enrolment(email, secret, totp.provisioning_uri(secret, email))


def _wrap(ring: KeyProvider, operator_id: uuid.UUID, secret: str) -> tuple[bytes, str]:
    try:
        return totp.wrap_secret(ring, str(operator_id), secret)
    except MasterKeyError as exc:
        raise OperatorError(str(exc)) from exc


async def _account_event(session: AsyncSession, action: str, operator_id: uuid.UUID) -> None:
    """Account changes come from the CLI; the log names the operator by id."""
    await record_event(
        session, operator=None, actor_label="cli", action=action, details={"operator": str(operator_id)}
    )


async def list_operators(db: Database) -> list[dict[str, Any]]:
    async with AsyncSession(db.admin_engine) as session:
        rows = (await session.scalars(select(Operator).order_by(Operator.email))).all()
    return [
        {
            "email": row.email,
            "status": row.status,
            "mfa": "enabled" if row.totp_enabled else "not yet used",
            "created_at": row.created_at.isoformat(),
            "last_sign_in_at": row.last_sign_in_at.isoformat() if row.last_sign_in_at else None,
        }
        for row in rows
    ]


async def _account(session: AsyncSession, email: str) -> Operator:
    operator = await session.scalar(
        select(Operator).where(Operator.email == normalize_email(email)).with_for_update()
    )
    if operator is None:
        raise OperatorError(f"no operator {normalize_email(email)}")
    return operator


async def disable_operator(db: Database, email: str) -> None:
    """No further sign-in; every session of the operator ends now."""
    async with AsyncSession(db.admin_engine) as session, session.begin():
        operator = await _account(session, email)
        operator.status, operator.updated_at = DISABLED, datetime.now(UTC)
        await session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))
        await _account_event(session, "operator.disable", operator.id)


async def reset_mfa(db: Database, ring: KeyProvider, email: str) -> Enrolment:
    """A new TOTP secret (the old one stops working at once) and every session ended."""
    secret = totp.new_secret()
    async with AsyncSession(db.admin_engine) as session, session.begin():
        operator = await _account(session, email)
        wrapped, key_id = _wrap(ring, operator.id, secret)
        operator.totp_secret_wrapped, operator.totp_master_key_id = wrapped, key_id
        operator.totp_enabled, operator.last_totp_step = False, None
        operator.updated_at = datetime.now(UTC)
        await session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator.id))
        email, operator_id = operator.email, operator.id
        await _account_event(session, "operator.reset_mfa", operator_id)
    await throttle.clear(db, code_key(operator_id))
    return Enrolment(email, secret, totp.provisioning_uri(secret, email))


async def ensure_demo_operator(db: Database, ring: KeyProvider, email: str, password: str) -> Enrolment:
    """`tenantcrm demo` only: the demo's operator, created or re-enabled with this password and a
    new TOTP secret on every run (the demo prints it; a real deployment never runs this)."""
    async with AsyncSession(db.admin_engine) as session:
        exists = await session.scalar(select(Operator.id).where(Operator.email == normalize_email(email)))
    if exists is None:
        return await create_operator(db, ring, email, password)
    password_hash = await hash_password(password)
    async with AsyncSession(db.admin_engine) as session, session.begin():
        operator = await _account(session, email)
        operator.password_hash, operator.status = password_hash, ACTIVE
    return await reset_mfa(db, ring, email)


async def rewrap_totp_secrets(db: Database, ring: KeyProvider) -> int:
    """Rewrap every operator's TOTP secret that the ring's current master key did not wrap
    (`tenantcrm keys rotate-master`), so the previous master key can be retired; rerunnable.

    Secrets no configured key can unwrap are left as they are and reported in one error after the
    others are rewrapped (`operators reset-mfa` gives such an operator a new one).
    """
    rewrapped, failures = 0, []
    async with AsyncSession(db.admin_engine) as session, session.begin():
        operators = (
            await session.scalars(
                select(Operator).where(Operator.totp_master_key_id != ring.key_id).with_for_update()
            )
        ).all()
        for operator in operators:
            try:
                secret = totp.unwrap_secret(
                    ring, str(operator.id), bytes(operator.totp_secret_wrapped), operator.totp_master_key_id
                )
            except MasterKeyError:
                failures.append(operator.email)
                continue
            operator.totp_secret_wrapped, operator.totp_master_key_id = _wrap(ring, operator.id, secret)
            rewrapped += 1
    if failures:
        raise MasterKeyError(
            f"rewrapped {rewrapped} operator TOTP secrets; {len(failures)} could not be unwrapped"
            f" (first: {failures[0]}; give them a new one with operators reset-mfa)"
        )
    return rewrapped


# --- sign-in, step 1: the password ---


async def check_password(
    db: Database, email: str, password: str, *, address: str, previous_cookie: str | None = None
) -> str:
    """Open a session that waits for the TOTP code; returns its cookie secret.

    Unknown, disabled and wrong-password accounts are refused alike, after the same argon2 work.
    """
    email = normalize_email(email)
    limits = {
        account_key(email): throttle.ACCOUNT_LIMIT,
        throttle.address_key(address): throttle.ADDRESS_LIMIT,
    }
    if not await throttle.reserve_attempt(db, limits):
        raise SignInThrottled
    if len(password) > MAX_PASSWORD_LENGTH:
        raise SignInFailed
    async with unscoped_platform_session(db) as session:
        operator = await session.scalar(select(Operator).where(Operator.email == email))
        operator_id = operator.id if operator is not None and operator.status == ACTIVE else None
        password_hash = operator.password_hash if operator_id else None
    if not await verify_password(password_hash, password) or operator_id is None:
        raise SignInFailed
    now = datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    async with unscoped_platform_session(db) as session:
        await _end_session(session, previous_cookie)
        await session.execute(
            delete(OperatorSession).where(
                OperatorSession.operator_id == operator_id, OperatorSession.expires_at <= now
            )
        )
        session.add(
            OperatorSession(
                token_hash=_digest(secret),
                operator_id=operator_id,
                mfa_passed=False,
                expires_at=now + CODE_DUE_WITHIN,
            )
        )
    return secret


async def _end_session(session: AsyncSession, cookie: str | None) -> None:
    if cookie:
        await session.execute(delete(OperatorSession).where(OperatorSession.token_hash == _digest(cookie)))


async def awaiting_code(db: Database, cookie: str | None) -> bool:
    """Whether the cookie names a session whose password step passed and whose code is due."""
    if not cookie:
        return False
    async with unscoped_platform_session(db) as session:
        return (await _pending(session, cookie)) is not None


async def _pending(session: AsyncSession, cookie: str) -> Operator | None:
    return await session.scalar(
        select(Operator)
        .join(OperatorSession, OperatorSession.operator_id == Operator.id)
        .where(
            OperatorSession.token_hash == _digest(cookie),
            OperatorSession.mfa_passed.is_(False),
            OperatorSession.expires_at > datetime.now(UTC),
            Operator.status == ACTIVE,
        )
    )


# --- sign-in, step 2: the TOTP code ---


class CodeNotDue(Exception):
    """No session waiting for a code (never signed in, expired, or already used): start again."""


async def check_code(db: Database, ring: KeyProvider, cookie: str | None, code: str, *, address: str) -> str:
    """Turn the waiting session into a signed-in one; returns the new session's cookie secret.

    A code counts once: the newest accepted time step is stored, and a code of that step or an
    older one is refused, so a code seen over someone's shoulder cannot be replayed.
    """
    if not cookie:
        raise CodeNotDue
    async with unscoped_platform_session(db) as session:
        operator = await _pending(session, cookie)
        if operator is None:
            raise CodeNotDue
        operator_id, email = operator.id, operator.email
        wrapped, key_id = bytes(operator.totp_secret_wrapped), operator.totp_master_key_id
    limits = {code_key(operator_id): CODE_LIMIT, throttle.address_key(address): throttle.ADDRESS_LIMIT}
    if not await throttle.reserve_attempt(db, limits):
        async with unscoped_platform_session(db) as session:
            await _end_session(session, cookie)  # the password must be given again after the block
        raise SignInThrottled
    step = totp.matching_step(totp.unwrap_secret(ring, str(operator_id), wrapped, key_id), code)
    if step is None:
        raise SignInFailed
    now = datetime.now(UTC)
    secret = secrets.token_urlsafe(32)
    async with unscoped_platform_session(db) as session:
        # One statement decides, so two requests racing with the same code cannot both pass.
        taken = await session.scalar(
            update(Operator)
            .where(
                Operator.id == operator_id,
                Operator.status == ACTIVE,
                (Operator.last_totp_step.is_(None)) | (Operator.last_totp_step < step),
            )
            .values(last_totp_step=step, totp_enabled=True, last_sign_in_at=now)
            .returning(Operator.id)
        )
        if taken is None:
            raise SignInFailed
        ended = await session.execute(
            delete(OperatorSession).where(
                OperatorSession.token_hash == _digest(cookie), OperatorSession.mfa_passed.is_(False)
            )
        )
        if ended.rowcount != 1:  # the same waiting session used by a parallel request
            raise SignInFailed
        session.add(
            OperatorSession(
                token_hash=_digest(secret),
                operator_id=operator_id,
                mfa_passed=True,
                expires_at=now + SESSION_IDLE,
            )
        )
        await record_event(session, operator=OperatorPrincipal(operator_id, email), action="sign_in")
    await throttle.attempt_succeeded(db, account_key(email), throttle.address_key(address))
    await throttle.clear(db, code_key(operator_id))
    return secret


# --- sessions ---


async def operator_from_session(db: Database, cookie: str | None) -> OperatorPrincipal | None:
    """The operator of a live, fully signed-in session; slides its idle expiry forward."""
    if not cookie or len(cookie) < 32:
        return None
    now = datetime.now(UTC)
    async with unscoped_platform_session(db) as session:
        row = (
            await session.execute(
                select(Operator.id, Operator.email, OperatorSession)
                .join(OperatorSession, OperatorSession.operator_id == Operator.id)
                .where(
                    OperatorSession.token_hash == _digest(cookie),
                    OperatorSession.mfa_passed.is_(True),
                    OperatorSession.expires_at > now,
                    Operator.status == ACTIVE,
                )
            )
        ).first()
        if row is None:
            return None
        operator_id, email, web_session = row
        if now - web_session.last_seen_at > SESSION_TOUCH_EVERY:
            web_session.last_seen_at = now
            web_session.expires_at = min(now + SESSION_IDLE, web_session.created_at + SESSION_MAX_AGE)
    return OperatorPrincipal(operator_id, email)


async def sign_out(db: Database, operator: OperatorPrincipal, cookie: str) -> None:
    async with unscoped_platform_session(db) as session:
        await _end_session(session, cookie)
        await record_event(session, operator=operator, action="sign_out")


# --- the event log ---


async def record_event(
    session: AsyncSession,
    *,
    operator: OperatorPrincipal | None,
    action: str,
    actor_label: str | None = None,
    tenant: Tenant | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction. Details are ids, slugs, counts and choices:
    never a tenant's personal data, never a secret."""
    if not ACTION_PATTERN.fullmatch(action):
        raise ValueError(f"invalid operator event action {action!r}")
    label = operator.label if operator is not None else actor_label
    if not label:
        raise ValueError("an operator event needs an operator or an actor label")
    session.add(
        OperatorEvent(
            operator_id=operator.id if operator is not None else None,
            actor=label,
            action=action,
            tenant_id=tenant.id if tenant is not None else None,
            tenant_slug=tenant.slug if tenant is not None else None,
            details=to_jsonable(dict(details or {})),
        )
    )
    await session.flush()


async def record(db: Database, **event: Any) -> None:
    """`record_event` (same keywords) in a transaction of its own, as the application role."""
    async with unscoped_platform_session(db) as session:
        await record_event(session, **event)


@dataclass(frozen=True)
class EventPage:
    events: list[OperatorEvent]
    next_before: int | None


async def list_events(
    db: Database, operator: OperatorPrincipal, *, tenant_slug: str | None = None, before: int | None = None
) -> EventPage:
    """Newest first, a page at a time; any signed-in operator may read the whole log."""
    statement = select(OperatorEvent).order_by(OperatorEvent.id.desc()).limit(EVENTS_PAGE + 1)
    if tenant_slug:
        statement = statement.where(OperatorEvent.tenant_slug == tenant_slug)
    if before is not None:
        statement = statement.where(OperatorEvent.id < before)
    async with unscoped_platform_session(db) as session:
        rows = list((await session.scalars(statement)).all())
    more = len(rows) > EVENTS_PAGE
    rows = rows[:EVENTS_PAGE]
    return EventPage(rows, rows[-1].id if more and rows else None)


# What bootstrap gives the application role, `{app}` being its quoted name: it reads operators and
# records sign-ins, but cannot create an operator, change a password or a TOTP secret, or enable a
# disabled account (column privileges).
OPERATOR_GRANTS = (
    "GRANT SELECT ON platform.operators TO {app}",
    "GRANT UPDATE (last_totp_step, totp_enabled, last_sign_in_at) ON platform.operators TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON platform.operator_sessions TO {app}",
    # Append-only: no UPDATE or DELETE (a trigger refuses them even to the owner).
    "GRANT SELECT, INSERT ON platform.operator_events TO {app}",
    "GRANT SELECT, INSERT ON platform.support_grants TO {app}",
    "GRANT UPDATE (revoked_at, revoked_by) ON platform.support_grants TO {app}",
)


async def grant_operator_tables(conn: Any, app_role_quoted: str) -> None:
    """Run at bootstrap, after the platform migrations."""
    for statement in OPERATOR_GRANTS:
        await conn.execute(text(statement.format(app=app_role_quoted)))
