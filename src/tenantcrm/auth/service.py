"""Sign-in, web sessions and API tokens: every query on users, sessions and tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth import throttle
from tenantcrm.auth.models import ApiToken, Role, RolePermission, User, WebSession
from tenantcrm.auth.passwords import MAX_PASSWORD_LENGTH, hash_password, verify_password
from tenantcrm.auth.permissions import Principal
from tenantcrm.database import Database
from tenantcrm.preferences.models import TenantPreferences
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.tenancy.tenant import TENANT_ID_PATTERN, Tenant
from tenantcrm.validation import parse_uuid

SESSION_IDLE = timedelta(hours=8)
SESSION_MAX_AGE = timedelta(hours=24)
SESSION_TOUCH_EVERY = timedelta(minutes=5)
TOKEN_PREFIX = "tcrm_"  # noqa: S105 - a prefix, not a secret


class SignInFailed(Exception):
    """Wrong e-mail or password, or a disabled account: deliberately indistinguishable."""


class SignInThrottled(Exception):
    """Too many recent failures for this account or address."""


def _digest(secret: str) -> bytes:
    # The secrets are 256-bit random values, so a fast hash is enough (no guessing attack).
    return hashlib.sha256(secret.encode()).digest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


class UnknownRole(Exception):
    """No role of that name in this tenant."""


def _with_role(statement: Select[Any]) -> Select[Any]:
    """Add the user's role, its record scope, its permissions and the tenant's default language
    (one row per user)."""
    return (
        statement.add_columns(
            Role.name,
            Role.record_scope,
            func.array_remove(func.array_agg(RolePermission.permission), None),
            select(TenantPreferences.default_locale).where(TenantPreferences.id == 1).scalar_subquery(),
        )
        .join(Role, Role.id == User.role_id)
        .outerjoin(RolePermission, RolePermission.role_id == Role.id)
        .where(User.status == "active")
        .group_by(User.id, Role.id)
    )


# What _principal reads of a user, for reads that select columns rather than the User.
API_USER_COLUMNS = (User.id, User.email, User.display_name, User.team_id, User.locale)


def _principal(
    tenant: Tenant,
    user: User | Any,
    role: str,
    scope: str,
    permissions: list[str],
    default_locale: str | None,
    limit_to: list[str] | None = None,
) -> Principal:
    granted = frozenset(permissions)
    if limit_to is not None:  # an API token may carry only a subset of its user's rights
        granted &= frozenset(limit_to)
    return Principal(
        tenant=tenant,
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=role,
        permissions=granted,
        record_scope=scope,
        team_id=user.team_id,
        locale=user.locale,
        default_locale=default_locale,
    )


async def principal_for_user(session: AsyncSession, tenant: Tenant, user_id: uuid.UUID) -> Principal | None:
    """The principal of an active user, as a sign-in would make it."""
    row = (await session.execute(_with_role(select(User).where(User.id == user_id)))).first()
    return _principal(tenant, *row) if row else None


# --- cookies and tokens carry the tenant id so the principal names its own tenant ---


def split_session_cookie(value: str) -> tuple[str, str] | None:
    tenant_id, _, secret = value.partition(".")
    if not TENANT_ID_PATTERN.fullmatch(tenant_id) or len(secret) < 32:
        return None
    return tenant_id, secret


def split_api_token(value: str) -> tuple[str, str] | None:
    if not value.startswith(TOKEN_PREFIX):
        return None
    body = value[len(TOKEN_PREFIX) :]
    tenant_id, secret = body[:16], body[17:]
    if not TENANT_ID_PATTERN.fullmatch(tenant_id) or body[16:17] != "_" or len(secret) < 32:
        return None
    return tenant_id, secret


# --- users ---


async def upsert_user(
    session: AsyncSession,
    *,
    email: str,
    role: str,
    password: str | None = None,
    password_hash: str | None = None,
    display_name: str | None = None,
) -> User:
    """Create the user, or reset the password and role of an existing one; the password is given
    in clear (hashed here) or already hashed."""
    if (password is None) == (password_hash is None):
        raise TypeError("give exactly one of password and password_hash")
    email = normalize_email(email)
    role_id = await session.scalar(select(Role.id).where(Role.name == role))
    if role_id is None:
        raise UnknownRole(role)
    if password_hash is None:
        password_hash = await hash_password(password)  # type: ignore[arg-type]
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email,
            display_name=display_name or email.split("@")[0],
            password_hash=password_hash,
            role_id=role_id,
        )
        session.add(user)
    else:
        user.password_hash, user.role_id, user.status = password_hash, role_id, "active"
    await session.flush()
    return user


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


# --- sign-in and web sessions ---


@dataclass(frozen=True)
class SignedIn:
    cookie_value: str
    principal: Principal


async def sign_in(
    db: Database,
    tenant: Tenant,
    email: str,
    password: str,
    *,
    address: str,
    previous_cookie: str | None = None,
) -> SignedIn:
    """Check the password and open a new web session (the old one, if any, is ended).

    The slow password check runs outside any transaction, so a flood of attempts holds no
    database connection while argon2 works.
    """
    email = normalize_email(email)
    account = throttle.account_key(tenant.id, email)
    address_key = throttle.address_key(address)
    limits = {account: throttle.ACCOUNT_LIMIT, address_key: throttle.ADDRESS_LIMIT}
    if not await throttle.reserve_attempt(db, limits):
        raise SignInThrottled
    if len(password) > MAX_PASSWORD_LENGTH:
        raise SignInFailed
    async with tenant_session(db, tenant) as session:
        user = await find_user_by_email(session, email)
        user_id = user.id if user is not None and user.status == "active" else None
        password_hash = user.password_hash if user_id else None
    if not await verify_password(password_hash, password) or user_id is None:
        raise SignInFailed
    now = datetime.now(UTC)
    async with tenant_session(db, tenant) as session:
        user = await session.get(User, user_id)
        if user is None or user.status != "active":  # disabled while we were checking
            raise SignInFailed
        if previous_cookie and (parts := split_session_cookie(previous_cookie)):
            await session.execute(delete(WebSession).where(WebSession.token_hash == _digest(parts[1])))
        await session.execute(
            delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now)
        )
        secret = secrets.token_urlsafe(32)
        session.add(WebSession(token_hash=_digest(secret), user_id=user.id, expires_at=now + SESSION_IDLE))
        user.last_sign_in_at = now
        principal = await principal_for_user(session, tenant, user.id)
        if principal is None:
            raise SignInFailed
        await audit.record(
            session,
            actor=principal,
            action=audit.SIGN_IN,
            entity_type="user",
            entity_id=str(user.id),
            changes={},
        )
        signed_in = SignedIn(f"{tenant.id}.{secret}", principal)
    await throttle.attempt_succeeded(db, account, address_key)
    return signed_in


async def principal_from_session(session: AsyncSession, tenant: Tenant, secret: str) -> Principal | None:
    """The principal of a live web session in the current tenant unit of work."""
    now = datetime.now(UTC)
    statement = _with_role(
        select(User, WebSession)
        .join(WebSession, WebSession.user_id == User.id)
        .where(WebSession.token_hash == _digest(secret), WebSession.expires_at > now)
        .group_by(WebSession.token_hash)
    )
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    user, web_session, role, scope, permissions, default_locale = row
    if now - web_session.last_seen_at > SESSION_TOUCH_EVERY:
        web_session.last_seen_at = now
        # Idle expiry slides forward, but never past the absolute limit from sign-in.
        web_session.expires_at = min(now + SESSION_IDLE, web_session.created_at + SESSION_MAX_AGE)
    return _principal(tenant, user, role, scope, permissions, default_locale)


async def sign_out(session: AsyncSession, principal: Principal, secret: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.token_hash == _digest(secret)))
    await audit.record(
        session,
        actor=principal,
        action=audit.SIGN_OUT,
        entity_type="user",
        entity_id=str(principal.user_id),
        changes={},
    )


# --- API tokens ---


async def create_api_token(
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    name: str,
    expires_at: datetime | None = None,
    permissions: list[str] | None = None,
) -> str:
    """A new token for `user`; the clear value is returned once and stored only hashed.
    `permissions` narrows the token to a subset of its user's rights (None: all of them)."""
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=_digest(secret),
            expires_at=expires_at,
            permissions=sorted(permissions) if permissions is not None else None,
        )
    )
    await session.flush()
    return f"{TOKEN_PREFIX}{tenant.id}_{secret}"


async def revoke_api_tokens_named(session: AsyncSession, user: User, name: str) -> None:
    await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


# Built once, read as columns on a Core connection, not ORM objects: this runs before every API
# request (issue 8's profile).
_TOKEN_PRINCIPAL = _with_role(
    select(*API_USER_COLUMNS, ApiToken.id.label("token_id"), ApiToken.last_used_at, ApiToken.permissions)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > bindparam("now")),
    )
    .group_by(ApiToken.id)
)


async def principal_from_api_token(session: AsyncSession, tenant: Tenant, secret: str) -> Principal | None:
    now = datetime.now(UTC)
    connection = await session.connection()
    row = (await connection.execute(_TOKEN_PRINCIPAL, {"token_hash": _digest(secret), "now": now})).first()
    if row is None:
        return None
    *_, last_used_at, token_permissions, role, scope, permissions, default_locale = row
    if last_used_at is None or now - last_used_at > timedelta(minutes=1):
        await session.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
    return _principal(tenant, row, role, scope, permissions, default_locale, limit_to=token_permissions)


async def active_user_id(session: AsyncSession, raw: object) -> uuid.UUID | None:
    """The id of an active user of the tenant named by `raw` (an id from a form or the API), else None."""
    wanted = parse_uuid(raw)
    if wanted is None:
        return None
    return await session.scalar(select(User.id).where(User.id == wanted, User.status == "active"))


async def active_users(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """(id, display name) of the tenant's active users, by name: the people work can be assigned to.
    Any signed-in user may see colleagues' names; nothing else about them."""
    rows = await session.execute(
        select(User.id, User.display_name).where(User.status == "active").order_by(User.display_name, User.id)
    )
    return [(user_id, name) for user_id, name in rows.all()]


async def set_user_locale(session: AsyncSession, principal: Principal, locale: str) -> None:
    """The signed-in user's own language, over the tenant's default (LOCALES are checked by the caller)."""
    await session.execute(update(User).where(User.id == principal.user_id).values(locale=locale))
