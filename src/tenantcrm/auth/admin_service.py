"""Tenant administration: users, teams, roles and the permission matrix, and API tokens."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.models import ApiToken, Role, RolePermission, Team, User, WebSession
from tenantcrm.auth.passwords import generate_password, password_problem
from tenantcrm.auth.permissions import ALL_PERMISSIONS, RECORD_SCOPES, Principal
from tenantcrm.auth.service import create_api_token, find_user_by_email, normalize_email, upsert_user
from tenantcrm.messages import N_
from tenantcrm.tenancy import quotas
from tenantcrm.tenancy.tenant import Tenant
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{1,39}")
ADMIN_USERS, ADMIN_ROLES, TOKENS = "admin.users", "admin.roles", "api_tokens.manage"


class NotFound(Exception):
    """No such user, team, role or token in this tenant."""


@dataclass(frozen=True)
class RoleView:
    id: uuid.UUID
    name: str
    built_in: bool
    record_scope: str
    permissions: frozenset[str]
    users: int


@dataclass(frozen=True)
class UserView:
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    team: str | None
    status: str
    last_sign_in_at: datetime | None


@dataclass(frozen=True)
class NewUser:
    email: str
    role: str
    password: str | None = None
    """Set when it was generated: shown once, never stored in clear."""


@dataclass(frozen=True)
class TokenView:
    id: uuid.UUID
    name: str
    permissions: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    owner_email: str = ""


def _refuse(field_name: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field_name, code, message)])


async def create_user_record(
    session: AsyncSession,
    tenant: Tenant,
    *,
    email: str,
    role: str,
    password: str | None = None,
    display_name: str | None = None,
    team_id: uuid.UUID | None = None,
    actor: Principal | None = None,
    actor_label: str | None = None,
) -> NewUser:
    """Create a user and audit it (the CLI and the settings page both come here); refuses
    duplicates and a user beyond the tenant's quota. `actor` is the admin acting; the CLI passes
    none and names itself."""
    email = normalize_email(email)
    if not EMAIL.fullmatch(email):
        raise _refuse("email", "invalid_email", N_("Enter a valid e-mail address."))
    if await find_user_by_email(session, email):
        raise _refuse("email", "duplicate", N_("A user with this e-mail address already exists."))
    if password is not None and (problem := password_problem(password)):
        raise InvalidInput([FieldError("password", "weak_password", problem)])
    if not await session.scalar(select(Role.id).where(Role.name == role)):
        raise _refuse("role", "unknown_role", N_("Unknown role."))
    await quotas.check_users(session, tenant)
    generated = password is None
    password = password or generate_password()
    user = await upsert_user(session, email=email, password=password, role=role, display_name=display_name)
    user.team_id = team_id
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        actor_label=actor_label,
        action=audit.CREATE,
        entity_type="user",
        entity_id=str(user.id),
        changes={"role": role, "team_id": team_id},
    )
    return NewUser(email=email, role=role, password=password if generated else None)


class AccessAdminService:
    """What a tenant admin manages, each step checked against the acting principal."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    async def _audit(self, action: str, entity_type: str, entity_id: object, changes: dict) -> None:
        await audit.record(
            self.session,
            actor=self.principal,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            changes=changes,
        )

    # --- users ---

    async def list_users(self) -> list[UserView]:
        self.principal.require(ADMIN_USERS)
        rows = await self.session.execute(
            select(User, Role.name, Team.name)
            .join(Role, Role.id == User.role_id)
            .outerjoin(Team, Team.id == User.team_id)
            .order_by(User.email)
        )
        return [
            UserView(u.id, u.email, u.display_name, role, team, u.status, u.last_sign_in_at)
            for u, role, team in rows
        ]

    async def invite_user(
        self, *, email: str, role: str, display_name: str | None = None, team_id: uuid.UUID | None = None
    ) -> NewUser:
        self.principal.require(ADMIN_USERS)
        await self._grantable(role)
        if team_id is not None:
            await self._team(team_id)
        created = await create_user_record(
            self.session,
            self.principal.tenant,
            email=email,
            role=role,
            display_name=display_name,
            team_id=team_id,
            actor=self.principal,
        )
        return created

    async def _within_own_rights(self, role_id: uuid.UUID) -> None:
        """Nobody acts on more than they hold: a user admin can neither make someone a full
        admin nor demote or disable one."""
        held = set(
            await self.session.scalars(
                select(RolePermission.permission).where(RolePermission.role_id == role_id)
            )
        )
        if not held <= self.principal.permissions:
            raise _refuse("role", "beyond_own_rights", N_("This needs rights you do not have yourself."))

    async def _grantable(self, role: str) -> uuid.UUID:
        """The id of a role the principal may hand out."""
        role_id = await self.session.scalar(select(Role.id).where(Role.name == role))
        if role_id is None:
            raise _refuse("role", "unknown_role", N_("Unknown role."))
        await self._within_own_rights(role_id)
        return role_id

    async def _user(self, user_id: uuid.UUID | str) -> User:
        user = await self.session.get(User, parse_uuid(user_id)) if parse_uuid(user_id) else None
        if user is None:
            raise NotFound
        return user

    async def assign(self, user_id: uuid.UUID | str, *, role: str, team_id: uuid.UUID | None) -> None:
        self.principal.require(ADMIN_USERS)
        user = await self._user(user_id)
        await self._within_own_rights(user.role_id)
        role_id = await self._grantable(role)
        if team_id is not None:
            await self._team(team_id)
        if user.id == self.principal.user_id and role != self.principal.role:
            raise _refuse("role", "own_role", N_("You cannot change your own role."))
        changes = audit.diff(
            {"role_id": user.role_id, "team_id": user.team_id}, {"role_id": role_id, "team_id": team_id}
        )
        user.role_id, user.team_id = role_id, team_id
        await self._audit(audit.PERMISSION_CHANGE, "user", user.id, changes)

    async def set_status(self, user_id: uuid.UUID | str, status: str) -> None:
        """Disable (ending every session and token at once) or enable a user."""
        self.principal.require(ADMIN_USERS)
        user = await self._user(user_id)
        if user.id == self.principal.user_id:
            raise _refuse("status", "own_status", N_("You cannot disable yourself."))
        await self._within_own_rights(user.role_id)
        if status != "disabled" and user.status == "disabled":  # an enabled user takes a place again
            await quotas.check_users(self.session, self.principal.tenant)
        user.status = "disabled" if status == "disabled" else "active"
        await self._audit(audit.PERMISSION_CHANGE, "user", user.id, {"status": user.status})
        if user.status == "disabled":
            await self.session.execute(delete(WebSession).where(WebSession.user_id == user.id))
            await self.session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )

    # --- teams ---

    async def list_teams(self) -> list[Team]:
        self.principal.require(ADMIN_USERS)
        return list((await self.session.scalars(select(Team).order_by(Team.name))).all())

    async def create_team(self, name: str) -> Team:
        self.principal.require(ADMIN_USERS)
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise _refuse("name", "required", N_("Name is required."))
        if await self.session.scalar(select(Team.id).where(Team.name == name)):
            raise _refuse("name", "duplicate", N_("A team with this name already exists."))
        team = Team(id=uuid.uuid4(), name=name)
        self.session.add(team)
        await self.session.flush()
        await self._audit(audit.CREATE, "team", team.id, {"name": name})
        return team

    async def _team(self, team_id: uuid.UUID | str) -> Team:
        team = await self.session.get(Team, parse_uuid(team_id)) if parse_uuid(team_id) else None
        if team is None:
            raise _refuse("team", "unknown_team", N_("Unknown team."))
        return team

    # --- roles and the permission matrix ---

    async def list_roles(self) -> list[RoleView]:
        self.principal.require(ADMIN_ROLES)
        users = select(func.count()).where(User.role_id == Role.id).correlate(Role).scalar_subquery()
        rows = await self.session.execute(
            select(Role, func.array_remove(func.array_agg(RolePermission.permission), None), users)
            .outerjoin(RolePermission, RolePermission.role_id == Role.id)
            .group_by(Role.id)
            .order_by(Role.built_in.desc(), Role.name)
        )
        return [RoleView(r.id, r.name, r.built_in, r.record_scope, frozenset(p), n) for r, p, n in rows]

    async def create_role(self, name: str, *, record_scope: str, permissions: set[str]) -> Role:
        self.principal.require(ADMIN_ROLES)
        name = name.strip().lower()
        if not ROLE_NAME.fullmatch(name):
            raise _refuse(
                "name",
                "invalid_name",
                N_("Use 2-40 lower-case letters, digits or _, starting with a letter."),
            )
        if await self.session.scalar(select(Role.id).where(Role.name == name)):
            raise _refuse("name", "duplicate", N_("A role with this name already exists."))
        self._check_matrix(record_scope, permissions)
        role = Role(id=uuid.uuid4(), name=name, built_in=False, record_scope=record_scope)
        self.session.add(role)
        await self.session.flush()
        self.session.add_all(RolePermission(role_id=role.id, permission=p) for p in sorted(permissions))
        await self.session.flush()
        await self._audit(
            audit.PERMISSION_CHANGE,
            "role",
            role.id,
            {"name": name, "record_scope": record_scope, "permissions": sorted(permissions)},
        )
        return role

    def _check_matrix(self, record_scope: str, permissions: set[str]) -> None:
        if record_scope not in RECORD_SCOPES:
            raise _refuse("record_scope", "invalid_choice", N_("Choose one of the listed values."))
        if permissions - ALL_PERMISSIONS:
            raise _refuse("permissions", "unknown_permission", N_("Unknown permission."))
        if not permissions <= self.principal.permissions:
            raise _refuse(
                "permissions", "beyond_own_rights", N_("A role cannot hold rights you do not have.")
            )

    async def _role(self, role_id: uuid.UUID | str) -> Role:
        role = await self.session.get(Role, parse_uuid(role_id)) if parse_uuid(role_id) else None
        if role is None:
            raise NotFound
        return role

    async def update_role(
        self, role_id: uuid.UUID | str, *, record_scope: str, permissions: set[str]
    ) -> None:
        """Replace a role's row of the matrix. The admin role stays whole, so no tenant can
        lock itself out of its own settings."""
        self.principal.require(ADMIN_ROLES)
        role = await self._role(role_id)
        if role.name == "admin":
            raise _refuse("permissions", "admin_fixed", N_("The admin role always holds every permission."))
        self._check_matrix(record_scope, permissions)
        before = set(
            await self.session.scalars(
                select(RolePermission.permission).where(RolePermission.role_id == role.id)
            )
        )
        changes = audit.diff(
            {"record_scope": role.record_scope, "permissions": sorted(before)},
            {"record_scope": record_scope, "permissions": sorted(permissions)},
        )
        role.record_scope = record_scope
        await self.session.execute(delete(RolePermission).where(RolePermission.role_id == role.id))
        self.session.add_all(RolePermission(role_id=role.id, permission=p) for p in sorted(permissions))
        await self.session.flush()
        if changes:
            await self._audit(audit.PERMISSION_CHANGE, "role", role.id, {"name": role.name, **changes})

    async def delete_role(self, role_id: uuid.UUID | str) -> None:
        self.principal.require(ADMIN_ROLES)
        role = await self._role(role_id)
        if role.built_in:
            raise _refuse("name", "built_in", N_("Built-in roles cannot be deleted."))
        if await self.session.scalar(select(func.count()).where(User.role_id == role.id)):
            raise _refuse("name", "in_use", N_("Users still hold this role."))
        await self.session.delete(role)
        await self._audit(audit.DELETE, "role", role.id, {"name": role.name})

    # --- API tokens ---

    async def list_tokens(self) -> list[TokenView]:
        """The principal's own tokens; with admin.users, everyone's."""
        self.principal.require(TOKENS)
        statement = select(ApiToken, User.email).join(User, User.id == ApiToken.user_id)
        if not self.principal.can(ADMIN_USERS):
            statement = statement.where(ApiToken.user_id == self.principal.user_id)
        rows = await self.session.execute(statement.order_by(ApiToken.created_at.desc()))
        return [
            TokenView(
                t.id, t.name, t.permissions, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, email
            )
            for t, email in rows
        ]

    async def create_token(
        self, *, name: str, permissions: set[str] | None, expires_at: datetime | None
    ) -> str:
        """A token for the principal itself, never wider than the principal's own rights."""
        self.principal.require(TOKENS)
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise _refuse("name", "required", N_("Name is required."))
        if permissions is not None and not permissions <= self.principal.permissions:
            raise _refuse("permissions", "not_yours", N_("A token cannot hold rights you do not have."))
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise _refuse("expires_at", "in_past", N_("The expiry must be in the future."))
        user = await self.session.get(User, self.principal.user_id)
        assert user is not None
        token = await create_api_token(
            self.session,
            self.principal.tenant,
            user,
            name,
            expires_at=expires_at,
            permissions=sorted(permissions) if permissions is not None else None,
        )
        await self._audit(
            audit.CREATE,
            "api_token",
            name,
            {
                "permissions": sorted(permissions) if permissions is not None else "all",
                "expires_at": expires_at,
            },
        )
        return token

    async def revoke_token(self, token_id: uuid.UUID | str) -> None:
        self.principal.require(TOKENS)
        token = await self.session.get(ApiToken, parse_uuid(token_id)) if parse_uuid(token_id) else None
        if token is None or (token.user_id != self.principal.user_id and not self.principal.can(ADMIN_USERS)):
            raise NotFound
        if token.revoked_at is None:
            token.revoked_at = datetime.now(UTC)
            await self._audit(audit.DELETE, "api_token", token.id, {"name": token.name})
