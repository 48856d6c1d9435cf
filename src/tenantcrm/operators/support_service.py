"""Support access: a tenant admin grants platform support a time-limited look; operators use it.

Grants live in `platform.support_grants`. The tenant side runs inside the tenant's unit of work
(whose role cannot reach the platform schema), so the grant row is written in a second, platform
transaction: a grant's tenant audit event is recorded first and the grant committed after it (a
failed grant leaves neither), a revocation is committed first and audited after it (access ends
even if the audit write were lost). Both sides also land in the operator event log.

What a grant opens is deliberately small: the tenant's configuration and activity in figures
(roles and their permissions, users per role and status, approximate row counts, import jobs per
status, retention policies, audit events per action). Never a customer, a name, an e-mail
address or any other personal data: customer names are stored in clear, so a read-only session
inside the tenant's own pages would show them (ADR 0012).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantcrm.audit import service as audit
from tenantcrm.auth.models import Role, RolePermission, User
from tenantcrm.auth.permissions import ADMIN_USERS, Principal
from tenantcrm.database import Database
from tenantcrm.messages import N_
from tenantcrm.operators.models import SupportGrant
from tenantcrm.operators.service import OperatorPrincipal, record, record_event
from tenantcrm.tenancy.session import tenant_session, unscoped_platform_session
from tenantcrm.tenancy.tenant import Tenant
from tenantcrm.validation import FieldError, InvalidInput

HOURS_CHOICES = (1, 4, 8, 24, 48, 72)
MAX_REASON = 500
HISTORY = 20
ENTITY = "support_access"
# Serialises grants of one tenant, so two admins granting at once cannot make two live grants.
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('tenantcrm.support'), hashtext(:tenant))")


def _live() -> tuple[ColumnElement[bool], ...]:
    """A grant in force now: not revoked, started, not yet ended. By the database's clock, so an
    app host whose clock runs slow cannot stretch a grant past the end the tenant chose."""
    return (
        SupportGrant.revoked_at.is_(None),
        SupportGrant.starts_at <= func.now(),
        SupportGrant.ends_at > func.now(),
    )


def tenant_actor(principal: Principal) -> str:
    """How the operator log names a tenant user: by id, never by e-mail address."""
    return f"tenant-user:{principal.user_id}"


class SupportAccessRefused(Exception):
    """No live support grant for this tenant."""


@dataclass(frozen=True)
class GrantView:
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    revoked_at: datetime | None
    reason: str
    granted_by: str
    """The granting user's display name (tenant side) or id (console side)."""

    @property
    def live(self) -> bool:
        now = datetime.now(UTC)
        return self.revoked_at is None and self.starts_at <= now < self.ends_at

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.live else "expired"


async def _grants(db: Database, tenant_id: str, limit: int = HISTORY) -> list[SupportGrant]:
    async with unscoped_platform_session(db) as session:
        rows = await session.scalars(
            select(SupportGrant)
            .where(SupportGrant.tenant_id == tenant_id)
            .order_by(SupportGrant.starts_at.desc())
            .limit(limit)
        )
        return list(rows.all())


class SupportAccessService:
    """The tenant admin's side (admin.users): grant, revoke, see the grants."""

    def __init__(self, session: AsyncSession, principal: Principal, db: Database) -> None:
        self.session = session
        self.principal = principal
        self.db = db

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant

    async def grants(self) -> list[GrantView]:
        self.principal.require(ADMIN_USERS)
        rows = await _grants(self.db, self.tenant.id)
        names = dict(
            (
                await self.session.execute(
                    select(User.id, User.display_name).where(User.id.in_({r.granted_by for r in rows}))
                )
            ).all()
        )
        return [_view(row, names.get(row.granted_by, str(row.granted_by)[:8])) for row in rows]

    async def grant(self, hours: str, reason: str) -> GrantView:
        """Open support access from now for `hours`; refused while a grant is live."""
        self.principal.require(ADMIN_USERS)
        errors = []
        period = int(hours) if hours.strip().isascii() and hours.strip().isdigit() else 0
        if period not in HOURS_CHOICES:
            errors.append(FieldError("hours", "invalid_hours", N_("Choose how long support may look.")))
        reason = " ".join(reason.split())
        if not reason:
            errors.append(FieldError("reason", "required", N_("Say what support should look into.")))
        elif len(reason) > MAX_REASON:
            errors.append(
                FieldError("reason", "too_long", N_("At most {max} characters."), {"max": str(MAX_REASON)})
            )
        if errors:
            raise InvalidInput(errors)
        grant_id = uuid.uuid4()
        now = datetime.now(UTC)
        ends_at = now + timedelta(hours=period)
        # The audit event first, in a savepoint: a refusal below takes it back, and a failure to
        # record it leaves no grant. The reason stays on the grant row: free text has no place in
        # the append-only chain.
        savepoint = await self.session.begin_nested()
        try:
            await self._audit("grant", grant_id, {"hours": period, "ends_at": ends_at})
            row = await self._insert(grant_id, reason, now, ends_at, period)
        except BaseException:
            await savepoint.rollback()
            raise
        await savepoint.commit()
        return _view(row, self.principal.display_name)

    async def _insert(
        self, grant_id: uuid.UUID, reason: str, now: datetime, ends_at: datetime, period: int
    ) -> SupportGrant:
        async with unscoped_platform_session(self.db) as platform:
            await platform.execute(_LOCK, {"tenant": self.tenant.id})
            if await platform.scalar(
                select(SupportGrant.id).where(SupportGrant.tenant_id == self.tenant.id, *_live())
            ):
                raise InvalidInput(
                    [
                        FieldError(
                            "hours",
                            "already_granted",
                            N_("Support access is already open. Revoke it before granting it again."),
                        )
                    ]
                )
            row = SupportGrant(
                id=grant_id,
                tenant_id=self.tenant.id,
                granted_by=self.principal.user_id,
                reason=reason,
                starts_at=now,
                ends_at=ends_at,
            )
            platform.add(row)
            await record_event(
                platform,
                operator=None,
                actor_label=tenant_actor(self.principal),
                action="support.grant",
                tenant=self.tenant,
                details={"grant": grant_id, "hours": period, "ends_at": ends_at},
            )
        return row

    async def revoke(self) -> int:
        """End every live grant now; returns how many there were (0 is not an error)."""
        self.principal.require(ADMIN_USERS)
        async with unscoped_platform_session(self.db) as platform:
            ended = list(
                (
                    await platform.scalars(
                        update(SupportGrant)
                        .where(SupportGrant.tenant_id == self.tenant.id, *_live())
                        .values(revoked_at=func.now(), revoked_by=self.principal.user_id)
                        .returning(SupportGrant.id)
                    )
                ).all()
            )
            for grant_id in ended:
                await record_event(
                    platform,
                    operator=None,
                    actor_label=tenant_actor(self.principal),
                    action="support.revoke",
                    tenant=self.tenant,
                    details={"grant": grant_id},
                )
        for grant_id in ended:
            await self._audit("revoke", grant_id, {})
        return len(ended)

    async def _audit(self, action: str, grant_id: uuid.UUID, changes: dict[str, object]) -> None:
        await audit.record(
            self.session,
            actor=self.principal,
            action=action,
            entity_type=ENTITY,
            entity_id=str(grant_id),
            changes=changes,
        )


def _view(row: SupportGrant, granted_by: str) -> GrantView:
    return GrantView(row.id, row.starts_at, row.ends_at, row.revoked_at, row.reason, granted_by)


# --- the operator's side ---


async def grant_history(db: Database, tenant: Tenant) -> list[GrantView]:
    """The tenant's grants for the console, granters named by id (the console never sees names)."""
    return [_view(row, str(row.granted_by)) for row in await _grants(db, tenant.id)]


@dataclass(frozen=True)
class RoleFigures:
    name: str
    built_in: bool
    record_scope: str
    permissions: list[str]
    active_users: int
    disabled_users: int


@dataclass(frozen=True)
class SupportView:
    """A tenant's configuration and activity in figures: what support may see under a grant."""

    grant: GrantView
    schema_version: str | None
    roles: list[RoleFigures]
    table_rows: list[tuple[str, int]]
    import_jobs: dict[str, int]
    retention_policies: list[tuple[str, bool, int, str]]
    audit_actions: dict[str, int] = field(default_factory=dict)
    """Audit events of the last 30 days per action."""
    last_sign_in_at: datetime | None = None


async def support_view(db: Database, operator: OperatorPrincipal, tenant: Tenant) -> SupportView:
    """Refused without a live grant; each look is recorded in both logs before anything is read."""
    async with unscoped_platform_session(db) as platform:
        grant = await platform.scalar(
            select(SupportGrant).where(SupportGrant.tenant_id == tenant.id, *_live())
        )
        if grant is None:
            raise SupportAccessRefused(tenant.slug)
        await record_event(
            platform, operator=operator, action="support.view", tenant=tenant, details={"grant": grant.id}
        )
    async with tenant_session(db, tenant) as session:
        await audit.record(
            session,
            actor=None,
            actor_label=f"platform support: {operator.email}",
            action="support_view",
            entity_type=ENTITY,
            entity_id=str(grant.id),
            changes={},
        )
        return await _figures(session, _view(grant, str(grant.granted_by)))


async def _figures(session: AsyncSession, grant: GrantView) -> SupportView:
    permissions = func.array_remove(func.array_agg(func.distinct(RolePermission.permission)), None)
    active = func.count(func.distinct(User.id)).filter(User.status == "active")
    disabled = func.count(func.distinct(User.id)).filter(User.status != "active")
    roles = (
        await session.execute(
            select(Role.name, Role.built_in, Role.record_scope, permissions, active, disabled)
            .outerjoin(RolePermission, RolePermission.role_id == Role.id)
            .outerjoin(User, User.role_id == Role.id)
            .group_by(Role.id)
            .order_by(Role.built_in.desc(), Role.name)
        )
    ).all()
    tables = await session.execute(
        text(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables"
            " WHERE schemaname = current_schema() AND relname <> 'alembic_version' ORDER BY relname"
        )
    )
    imports = await session.execute(text("SELECT status, count(*) FROM import_jobs GROUP BY status"))
    policies = await session.execute(
        text("SELECT category, enabled, period_days, action FROM retention_policies ORDER BY category")
    )
    actions = await session.execute(
        text(
            "SELECT action, count(*) FROM audit_events WHERE at > now() - interval '30 days'"
            " GROUP BY action ORDER BY action"
        )
    )
    return SupportView(
        grant=grant,
        schema_version=await session.scalar(text("SELECT version_num FROM alembic_version")),
        roles=[RoleFigures(n, b, s, sorted(p or []), a or 0, d or 0) for n, b, s, p, a, d in roles],
        table_rows=[(name, int(count)) for name, count in tables],
        import_jobs=dict(imports.all()),
        retention_policies=[tuple(row) for row in policies.all()],  # type: ignore[misc]
        audit_actions=dict(actions.all()),
        last_sign_in_at=await session.scalar(select(func.max(User.last_sign_in_at))),
    )


async def record_refused_view(db: Database, operator: OperatorPrincipal, tenant: Tenant) -> None:
    """An attempt without a grant is worth knowing about too."""
    await record(db, operator=operator, action="support.refused", tenant=tenant)
