"""Tenant settings pages: users and teams, the roles' permission matrix, API tokens, loan rules.

Each route parses the form, calls AccessAdminService (which checks every right) and renders.
A row edited with htmx comes back as that row alone; without JS the same form posts and the
browser is sent back to the page (303). Secrets shown once (a generated password, a new token)
are rendered straight into the POST's answer: never a redirect, never a URL.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from tenantcrm.audit import service as audit
from tenantcrm.audit.service import AUDIT_READ
from tenantcrm.auth.admin_service import (
    ADMIN_ROLES,
    ADMIN_USERS,
    TOKENS,
    AccessAdminService,
    NewUser,
    NotFound,
)
from tenantcrm.auth.permissions import (
    ADMIN_RETENTION,
    ALL_PERMISSIONS,
    BUILT_IN_ROLE_NAMES,
    LOANS_CLASSIFY,
    RECORD_SCOPES,
    RISK_MANAGE,
    PermissionDenied,
    Principal,
)
from tenantcrm.loans.inputs import FLAGS
from tenantcrm.loans.ledger import CLASSES
from tenantcrm.loans.service import LoanService
from tenantcrm.messages import N_
from tenantcrm.preferences.service import LIMITS, PreferencesService
from tenantcrm.validation import FieldError, InvalidInput, parse_uuid
from tenantcrm.web.rendering import is_htmx, page
from tenantcrm.web.scope import WebScope

# The matrix's columns, grouped as an admin thinks of the work; a permission added to
# ALL_PERMISSIONS later still gets a column (under "Other", labelled by its name).
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("Customers"), ("customers.read", "customers.write", "pii.reveal")),
    (N_("Loans and risk"), ("loans.write", "loans.classify", "risk.manage")),
    (N_("Data"), ("segments.manage", "import", "export")),
    (
        N_("Administration"),
        ("admin.users", "admin.roles", "admin.retention", "audit.read", "api_tokens.manage"),
    ),
)
_UNGROUPED = tuple(sorted(ALL_PERMISSIONS - {p for _title, group in _GROUPS for p in group}))
PERMISSION_GROUPS = tuple(
    (title, kept)
    for title, group in (*_GROUPS, (N_("Other"), _UNGROUPED))
    if (kept := tuple(p for p in group if p in ALL_PERMISSIONS))
)
PERMISSION_ORDER = tuple(p for _title, group in PERMISSION_GROUPS for p in group)

PERMISSION_LABELS = {
    "customers.read": N_("View customers"),
    "customers.write": N_("Add and edit customers"),
    "pii.reveal": N_("Reveal personal data"),
    "loans.write": N_("Manage loans"),
    "loans.classify": N_("Classify loans"),
    "risk.manage": N_("Manage risk cases"),
    "segments.manage": N_("Manage segments"),
    "import": N_("Import data"),
    "export": N_("Export data"),
    "admin.users": N_("Manage users and teams"),
    "admin.roles": N_("Edit roles and permissions"),
    "admin.retention": N_("Set retention policies"),
    "audit.read": N_("Read the audit log"),
    "api_tokens.manage": N_("Manage API tokens"),
}
ROLE_LABELS = {
    "admin": N_("Administrator"),
    "manager": N_("Manager"),
    "loan_officer": N_("Loan officer"),
    "risk_officer": N_("Risk officer"),
    "auditor": N_("Auditor"),
    "viewer": N_("Viewer"),
}
SCOPE_LABELS = {"own": N_("Own records"), "team": N_("Team's records"), "all": N_("All records")}

# Which page GET /settings opens: the first one the principal may use.
SECTIONS = (
    (ADMIN_USERS, "users"),
    (ADMIN_USERS, "general"),
    (ADMIN_ROLES, "roles"),
    (TOKENS, "tokens"),
    (AUDIT_READ, "audit"),
    (LOANS_CLASSIFY, "classification"),
    (RISK_MANAGE, "warnings"),
    (ADMIN_RETENTION, "retention"),
    (ADMIN_USERS, "support"),
)
RULE_FIELDS = ("classification", "min_days_past_due", "flag")
BLANK_RULE_ROWS = 3
INVITE_FIELDS = ("email", "display_name", "role", "team")
DEFAULT_INVITE_ROLE = "loan_officer"
GENERAL_FIELDS = (*LIMITS, "default_locale")


def settings_sections(principal: Principal) -> set[str]:
    """The settings sections the principal may open (the sub-navigation shows these)."""
    return {name for permission, name in SECTIONS if principal.can(permission)}


def _render(
    request: Request, scope: WebScope, template: str, section: str, *, status_code: int = 200, **context: Any
) -> Response:
    return page(
        request,
        template,
        status_code=status_code,
        slug=scope.tenant.slug,
        section=section,
        sections=settings_sections(scope.principal),
        permission_groups=PERMISSION_GROUPS,
        permission_labels=PERMISSION_LABELS,
        role_labels=ROLE_LABELS,
        scope_labels=SCOPE_LABELS,
        record_scopes=RECORD_SCOPES,
        **context,
    )


def _day(value: str | None, *, next_day: bool = False) -> datetime | None:
    """A YYYY-MM-DD filter as the start of that day (UTC); `until` includes its whole day."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=1) if next_day else day, time.min, tzinfo=UTC)


def _query(filters: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in filters.items() if v})


def _key(value: str) -> str:
    """A row's id as the page writes it (the service has already found the row by it)."""
    return str(parse_uuid(value) or value)


def _team_id(value: object) -> uuid.UUID | None:
    """The team select's value: empty for no team; anything else must name a team."""
    text = str(value or "").strip()
    if not text:
        return None
    if (team_id := parse_uuid(text)) is None:
        raise InvalidInput([FieldError("team", "unknown_team", N_("Unknown team."))])
    return team_id


def _expiry(value: object) -> datetime | None:
    """The token form's optional date: the token stops working when that day begins (UTC)."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            [FieldError("expires_at", "invalid_date", N_("Enter a date as YYYY-MM-DD."))]
        ) from None
    return datetime.combine(day, time.min, tzinfo=UTC)


async def _role_names(service: AccessAdminService, held: set[str]) -> list[str]:
    """Roles to offer in the user forms. Listing roles needs admin.roles; without it, the
    built-in roles and those someone already holds."""
    if service.principal.can(ADMIN_ROLES):
        return [role.name for role in await service.list_roles()]
    return [*BUILT_IN_ROLE_NAMES, *sorted(held - set(BUILT_IN_ROLE_NAMES))]


class SettingsPages(Controller):
    path = "/t/{slug:str}/settings"

    @get("/", name="settings_home")
    async def home(self, web_scope: WebScope) -> Redirect:
        for permission, section in SECTIONS:
            if web_scope.principal.can(permission):
                return Redirect(f"/t/{web_scope.tenant.slug}/settings/{section}", status_code=303)
        raise PermissionDenied(ADMIN_USERS)

    # --- audit log and PII access log (read-only, audit.read) ---

    @get("/audit", name="settings_audit")
    async def audit_log(
        self,
        request: Request,
        web_scope: WebScope,
        actor: str | None = None,
        action: str | None = None,
        entity_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
    ) -> Response:
        """Filters are codes, ids and dates, never personal data, so they may sit in the URL."""
        filters = {
            "actor": actor if parse_uuid(actor or "") else None,
            "action": action or None,
            "entity_type": entity_type or None,
            "since": since or "",
            "until": until or "",
        }
        result = await audit.list_events(
            web_scope.session,
            web_scope.principal,
            actor=filters["actor"],
            action=filters["action"],
            entity_type=filters["entity_type"],
            since=_day(since),
            until=_day(until, next_day=True),
            after_seq=after,
        )
        users = await audit.list_actors(web_scope.session, web_scope.principal)
        return _render(
            request,
            web_scope,
            "settings/audit.html",
            "audit",
            result=result,
            filters=filters,
            users=users,
            actions=audit.ACTIONS,
            query=_query(filters),
        )

    @get("/pii-access", name="settings_pii_access")
    async def pii_access_log(
        self,
        request: Request,
        web_scope: WebScope,
        user: str | None = None,
        customer: str | None = None,
        since: str | None = None,
        until: str | None = None,
        after: int | None = None,
    ) -> Response:
        filters = {"user": user or "", "customer": customer or "", "since": since or "", "until": until or ""}
        result = await audit.list_pii_access(
            web_scope.session,
            web_scope.principal,
            user_id=parse_uuid(user or ""),
            customer_id=parse_uuid(customer or ""),
            since=_day(since),
            until=_day(until, next_day=True),
            after_id=after,
        )
        users = await audit.list_actors(web_scope.session, web_scope.principal)
        return _render(
            request,
            web_scope,
            "settings/pii_access.html",
            "audit",
            result=result,
            filters=filters,
            users=users,
            query=_query(filters),
        )

    # --- users ---

    async def _users(
        self,
        request: Request,
        scope: WebScope,
        *,
        status_code: int = 200,
        invite: dict[str, str] | None = None,
        invite_errors: InvalidInput | None = None,
        new_user: NewUser | None = None,
        saved: str | None = None,
        row_errors: dict[str, InvalidInput] | None = None,
    ) -> Response:
        service = AccessAdminService(scope.session, scope.principal)
        users = await service.list_users()
        return _render(
            request,
            scope,
            "settings/users.html",
            "users",
            status_code=status_code,
            users=users,
            teams=await service.list_teams(),
            role_names=await _role_names(service, {u.role for u in users}),
            invite=invite or {"role": DEFAULT_INVITE_ROLE},
            invite_errors=invite_errors,
            new_user=new_user,
            saved=saved,
            row_errors=row_errors or {},
        )

    async def _user_answer(
        self, request: Request, scope: WebScope, user_id: str, invalid: InvalidInput | None
    ) -> Response:
        """After a row's form: the row (htmx), the page with the row's error, or back to the page."""
        user_id = _key(user_id)
        if not is_htmx(request):
            if invalid:
                return await self._users(request, scope, status_code=422, row_errors={user_id: invalid})
            return Redirect(
                f"/t/{scope.tenant.slug}/settings/users?saved={user_id}#user-{user_id}", status_code=303
            )
        service = AccessAdminService(scope.session, scope.principal)
        users = await service.list_users()
        user = next((u for u in users if u.id == parse_uuid(user_id)), None)
        if user is None:
            raise NotFoundException()
        return _render(
            request,
            scope,
            "settings/_user_row.html",
            "users",
            status_code=422 if invalid else 200,
            user=user,
            teams=await service.list_teams(),
            role_names=await _role_names(service, {u.role for u in users}),
            saved=None if invalid else user_id,
            row_errors={user_id: invalid} if invalid else {},
        )

    @get("/users", name="settings_users")
    async def users_page(self, request: Request, web_scope: WebScope, saved: str | None = None) -> Response:
        return await self._users(request, web_scope, saved=saved)

    @post("/users", name="settings_invite")
    async def invite(self, request: Request, web_scope: WebScope) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "").strip() for name in INVITE_FIELDS}
        service = AccessAdminService(web_scope.session, web_scope.principal)
        try:
            new_user = await service.invite_user(
                email=values["email"],
                role=values["role"],
                display_name=values["display_name"] or None,
                team_id=_team_id(values["team"]),
            )
        except InvalidInput as invalid:
            return await self._users(
                request, web_scope, status_code=422, invite=values, invite_errors=invalid
            )
        # The generated password is in this answer alone (no-store, no redirect, no URL).
        return await self._users(request, web_scope, new_user=new_user)

    @post("/users/{user_id:str}/assign", name="settings_assign")
    async def assign(self, request: Request, web_scope: WebScope, user_id: str) -> Response:
        form = await request.form()
        service = AccessAdminService(web_scope.session, web_scope.principal)
        invalid = None
        try:
            await service.assign(
                user_id, role=str(form.get("role") or ""), team_id=_team_id(form.get("team"))
            )
        except NotFound:
            raise NotFoundException() from None
        except InvalidInput as refused:
            invalid = refused
        return await self._user_answer(request, web_scope, user_id, invalid)

    @post("/users/{user_id:str}/status", name="settings_user_status")
    async def set_status(self, request: Request, web_scope: WebScope, user_id: str) -> Response:
        form = await request.form()
        status = "disabled" if form.get("status") == "disabled" else "active"
        service = AccessAdminService(web_scope.session, web_scope.principal)
        invalid = None
        try:
            await service.set_status(user_id, status)
        except NotFound:
            raise NotFoundException() from None
        except InvalidInput as refused:
            invalid = refused
        return await self._user_answer(request, web_scope, user_id, invalid)

    # --- teams ---

    async def _teams(
        self,
        request: Request,
        scope: WebScope,
        *,
        status_code: int = 200,
        name: str = "",
        errors: InvalidInput | None = None,
    ) -> Response:
        service = AccessAdminService(scope.session, scope.principal)
        teams = await service.list_teams()
        members = Counter(u.team for u in await service.list_users() if u.team)
        return _render(
            request,
            scope,
            "settings/teams.html",
            "teams",
            status_code=status_code,
            teams=teams,
            members=members,
            name=name,
            errors=errors,
        )

    @get("/teams", name="settings_teams")
    async def teams_page(self, request: Request, web_scope: WebScope) -> Response:
        return await self._teams(request, web_scope)

    @post("/teams", name="settings_create_team")
    async def create_team(self, request: Request, web_scope: WebScope) -> Response:
        name = str((await request.form()).get("name") or "")
        try:
            await AccessAdminService(web_scope.session, web_scope.principal).create_team(name)
        except InvalidInput as invalid:
            return await self._teams(request, web_scope, status_code=422, name=name, errors=invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/teams", status_code=303)

    # --- roles: the permission matrix ---

    async def _roles(
        self,
        request: Request,
        scope: WebScope,
        *,
        status_code: int = 200,
        saved: str | None = None,
        row_errors: dict[str, InvalidInput] | None = None,
        create: dict[str, Any] | None = None,
        create_errors: InvalidInput | None = None,
    ) -> Response:
        roles = await AccessAdminService(scope.session, scope.principal).list_roles()
        return _render(
            request,
            scope,
            "settings/roles.html",
            "roles",
            status_code=status_code,
            roles=roles,
            saved=saved,
            row_errors=row_errors or {},
            create=create or {"record_scope": "own", "permissions": set()},
            create_errors=create_errors,
        )

    @get("/roles", name="settings_roles")
    async def roles_page(self, request: Request, web_scope: WebScope, saved: str | None = None) -> Response:
        return await self._roles(request, web_scope, saved=saved)

    @post("/roles", name="settings_create_role")
    async def create_role(self, request: Request, web_scope: WebScope) -> Response:
        form = await request.form()
        values = {
            "name": str(form.get("name") or ""),
            "record_scope": str(form.get("record_scope") or ""),
            "permissions": {str(p) for p in form.getall("permissions", [])},
        }
        service = AccessAdminService(web_scope.session, web_scope.principal)
        try:
            role = await service.create_role(
                values["name"], record_scope=values["record_scope"], permissions=values["permissions"]
            )
        except InvalidInput as invalid:
            return await self._roles(
                request, web_scope, status_code=422, create=values, create_errors=invalid
            )
        return Redirect(
            f"/t/{web_scope.tenant.slug}/settings/roles?saved={role.id}#role-{role.id}", status_code=303
        )

    @post("/roles/{role_id:str}", name="settings_update_role")
    async def update_role(self, request: Request, web_scope: WebScope, role_id: str) -> Response:
        form = await request.form()
        service = AccessAdminService(web_scope.session, web_scope.principal)
        invalid = None
        try:
            await service.update_role(
                role_id,
                record_scope=str(form.get("record_scope") or ""),
                permissions={str(p) for p in form.getall("permissions", [])},
            )
        except NotFound:
            raise NotFoundException() from None
        except InvalidInput as refused:
            invalid = refused
        role_id = _key(role_id)
        if not is_htmx(request):
            if invalid:
                return await self._roles(request, web_scope, status_code=422, row_errors={role_id: invalid})
            slug = web_scope.tenant.slug
            return Redirect(f"/t/{slug}/settings/roles?saved={role_id}#role-{role_id}", status_code=303)
        role = next((r for r in await service.list_roles() if r.id == parse_uuid(role_id)), None)
        if role is None:
            raise NotFoundException()
        return _render(
            request,
            web_scope,
            "settings/_role_row.html",
            "roles",
            status_code=422 if invalid else 200,
            role=role,
            saved=None if invalid else role_id,
            row_errors={role_id: invalid} if invalid else {},
        )

    @post("/roles/{role_id:str}/delete", name="settings_delete_role")
    async def delete_role(self, request: Request, web_scope: WebScope, role_id: str) -> Response:
        try:
            await AccessAdminService(web_scope.session, web_scope.principal).delete_role(role_id)
        except NotFound:
            raise NotFoundException() from None
        except InvalidInput as invalid:
            return await self._roles(request, web_scope, status_code=422, row_errors={_key(role_id): invalid})
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/roles", status_code=303)

    # --- API tokens ---

    async def _tokens(
        self,
        request: Request,
        scope: WebScope,
        *,
        status_code: int = 200,
        create: dict[str, Any] | None = None,
        errors: InvalidInput | None = None,
        new_token: str | None = None,
    ) -> Response:
        tokens = await AccessAdminService(scope.session, scope.principal).list_tokens()
        return _render(
            request,
            scope,
            "settings/tokens.html",
            "tokens",
            status_code=status_code,
            tokens=tokens,
            now=datetime.now(UTC),
            create=create or {"permissions": set()},
            errors=errors,
            new_token=new_token,
        )

    @get("/tokens", name="settings_tokens")
    async def tokens_page(self, request: Request, web_scope: WebScope) -> Response:
        return await self._tokens(request, web_scope)

    @post("/tokens", name="settings_create_token")
    async def create_token(self, request: Request, web_scope: WebScope) -> Response:
        form = await request.form()
        values = {
            "name": str(form.get("name") or ""),
            "expires_at": str(form.get("expires_at") or "").strip(),
            "permissions": {str(p) for p in form.getall("permissions", [])},
        }
        service = AccessAdminService(web_scope.session, web_scope.principal)
        try:
            token = await service.create_token(
                name=values["name"],
                # Nothing ticked: the token acts with all of its user's rights, now and later.
                permissions=values["permissions"] or None,
                expires_at=_expiry(values["expires_at"]),
            )
        except InvalidInput as invalid:
            return await self._tokens(request, web_scope, status_code=422, create=values, errors=invalid)
        # The clear token is in this answer alone (no-store, no redirect, no URL).
        return await self._tokens(request, web_scope, new_token=token)

    @post("/tokens/{token_id:str}/revoke", name="settings_revoke_token")
    async def revoke_token(self, web_scope: WebScope, token_id: str) -> Redirect:
        try:
            await AccessAdminService(web_scope.session, web_scope.principal).revoke_token(token_id)
        except NotFound:
            raise NotFoundException() from None
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/tokens", status_code=303)

    # --- five-category classification rules (loans.classify) ---

    async def _rules(
        self,
        request: Request,
        scope: WebScope,
        *,
        status_code: int = 200,
        rows: list[dict[str, str]] | None = None,
        errors: InvalidInput | None = None,
        saved: bool = False,
    ) -> Response:
        # The page edits the rules, which only loans.classify may do; LoanService.rules() itself
        # only needs customers.read, so the page checks the right it is for.
        scope.principal.require(LOANS_CLASSIFY)
        if rows is None:
            rows = [
                {
                    "classification": rule.classification,
                    "min_days_past_due": ""
                    if rule.min_days_past_due is None
                    else str(rule.min_days_past_due),
                    "flag": rule.flag or "",
                }
                for rule in await LoanService(scope.session, scope.principal).rules()
            ]
        return _render(
            request,
            scope,
            "settings/classification.html",
            "classification",
            status_code=status_code,
            rows=[*rows, *({name: "" for name in RULE_FIELDS} for _ in range(BLANK_RULE_ROWS))],
            row_errors=_rule_errors(errors, len(rows)),
            errors=errors,
            saved=saved,
            classes=[c for c in CLASSES if c != "normal"],
            flags=FLAGS,
        )

    # --- the institution's own settings (admin.users): contact intervals, complaint target, language ---

    @get("/general", name="settings_general")
    async def general(self, request: Request, web_scope: WebScope, saved: str | None = None) -> Response:
        preferences = await PreferencesService(web_scope.session, web_scope.principal).get()
        values = {name: str(getattr(preferences, name)) for name in GENERAL_FIELDS}
        return _render(
            request, web_scope, "settings/general.html", "general", values=values, saved=bool(saved)
        )

    @post("/general", name="settings_save_general")
    async def save_general(self, request: Request, web_scope: WebScope) -> Response:
        form = await request.form()
        values = {name: str(form.get(name) or "") for name in GENERAL_FIELDS}
        try:
            await PreferencesService(web_scope.session, web_scope.principal).update(values)
        except InvalidInput as invalid:
            return _render(
                request,
                web_scope,
                "settings/general.html",
                "general",
                status_code=422,
                values=values,
                errors=invalid,
                saved=False,
            )
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/general?saved=1", status_code=303)

    @get("/classification", name="settings_classification")
    async def rules_page(self, request: Request, web_scope: WebScope, saved: str | None = None) -> Response:
        return await self._rules(request, web_scope, saved=bool(saved))

    @post("/classification", name="settings_save_classification")
    async def save_rules(self, request: Request, web_scope: WebScope) -> Response:
        """The form posts the rows as parallel lists; rows left blank (the spare ones) are dropped."""
        form = await request.form()
        columns = [[str(v) for v in form.getall(name, [])] for name in RULE_FIELDS]
        rows = [
            dict(zip(RULE_FIELDS, (column[i] if i < len(column) else "" for column in columns), strict=True))
            for i in range(max((len(column) for column in columns), default=0))
        ]
        rows = [row for row in rows if any(value.strip() for value in row.values())]
        try:
            await LoanService(web_scope.session, web_scope.principal).replace_rules(rows)
        except InvalidInput as invalid:
            return await self._rules(request, web_scope, status_code=422, rows=rows, errors=invalid)
        return Redirect(f"/t/{web_scope.tenant.slug}/settings/classification?saved=1", status_code=303)


def _rule_errors(errors: InvalidInput | None, count: int) -> dict[int, list[FieldError]]:
    """Refusals by row: the service names them rules.<index> or rules.<index>.<field>."""
    found: dict[int, list[FieldError]] = {}
    for error in errors.errors if errors else []:
        parts = error.field.split(".")
        if len(parts) >= 2 and parts[0] == "rules" and parts[1].isdigit() and int(parts[1]) < count:
            found.setdefault(int(parts[1]), []).append(error)
    return found
