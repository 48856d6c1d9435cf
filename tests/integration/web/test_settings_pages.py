"""Settings pages: users and teams, the permission matrix, API tokens; rows swapped by htmx.

Every test that changes roles or users works in a tenant of its own, so the built-in roles of
the shared tenants stay as the other tests expect them.
"""

from __future__ import annotations

import html
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import httpx
import pytest

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.permissions import ALL_PERMISSIONS
from tenantcrm.settings import REPO_ROOT
from tenantcrm.tenancy.session import tenant_session
from tenantcrm.web.i18n import translations
from tenantcrm.web.settings import PERMISSION_LABELS, PERMISSION_ORDER, ROLE_LABELS
from tests.conftest import add_user, make_tenant, principal_of, web_sign_in

ZH = translations(REPO_ROOT / "web" / "locale", "zh_CN").gettext
VIEWER = "{ viewer { permissions } }"
HTMX = {"HX-Request": "true"}


@pytest.fixture
async def org(lifecycle):
    return await make_tenant(lifecycle, "settings")


@pytest.fixture
async def admin(client, org):
    """The client, signed in as the tenant's admin."""
    assert (await web_sign_in(client, org.slug, org.admin_email)).status_code == 303
    return client


@pytest.fixture
async def second_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser: its own cookies and address."""
    transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{secrets.randbelow(250) + 1}", 50001))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        yield other


def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"_csrf_token": client.cookies["csrftoken"]}


async def post(client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **data):
    return await client.post(path, data={**csrf(client), **data}, headers=headers, follow_redirects=False)


def input_value(page: str, element_id: str) -> str:
    match = re.search(rf'<input id="{element_id}"[^>]*\bvalue="([^"]*)"', page)
    assert match, f"no #{element_id} in the page"
    return html.unescape(match.group(1))


def option_value(page: str, label: str) -> str:
    match = re.search(rf'<option value="([^"]*)"\s*(?:selected)?>{re.escape(label)}</option>', page)
    assert match, f"no option {label!r} in the page"
    return match.group(1)


async def roles_of(db, org) -> dict:
    admin = await principal_of(db, org.tenant, org.admin_email)
    async with tenant_session(db, org.tenant) as session:
        return {role.name: role for role in await AccessAdminService(session, admin).list_roles()}


async def user_id_of(db, org, email: str) -> uuid.UUID:
    return (await principal_of(db, org.tenant, email)).user_id


# --- navigation and access ---


async def test_settings_opens_the_first_page_the_principal_may_use(client, db, org, admin):
    home = await admin.get(f"/t/{org.slug}/settings", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == f"/t/{org.slug}/settings/users"
    listing = await admin.get(f"/t/{org.slug}/customers")
    assert f'href="/t/{org.slug}/settings"' in listing.text  # the main navigation offers it

    manager = await add_user(db, org.tenant, "manager")  # may manage API tokens only
    await web_sign_in(client, org.slug, manager)
    home = await client.get(f"/t/{org.slug}/settings", follow_redirects=False)
    assert home.headers["location"] == f"/t/{org.slug}/settings/tokens"
    tokens = await client.get(home.headers["location"])
    assert tokens.status_code == 200
    assert f'href="/t/{org.slug}/settings/users"' not in tokens.text  # nor in the sub-navigation


async def test_a_loan_officer_is_refused_every_settings_page(client, db, org):
    officer = await add_user(db, org.tenant, "loan_officer")
    await web_sign_in(client, org.slug, officer)
    listing = await client.get(f"/t/{org.slug}/customers")
    assert f'href="/t/{org.slug}/settings"' not in listing.text
    for path in ("", "/users", "/teams", "/roles", "/tokens"):
        response = await client.get(f"/t/{org.slug}/settings{path}", follow_redirects=False)
        assert response.status_code == 403, path
        assert "<html" in response.text
    roles = await roles_of(db, org)
    some_id = str(roles["viewer"].id)
    for path, data in (
        ("/users", {"email": "x@example.com", "role": "viewer"}),
        (f"/users/{some_id}/assign", {"role": "viewer"}),
        (f"/users/{some_id}/status", {"status": "disabled"}),
        ("/teams", {"name": "x"}),
        ("/roles", {"name": "x_role", "record_scope": "own"}),
        (f"/roles/{some_id}", {"record_scope": "all", "permissions": sorted(ALL_PERMISSIONS)}),
        (f"/roles/{some_id}/delete", {}),
        ("/tokens", {"name": "x"}),
        (f"/tokens/{some_id}/revoke", {}),
    ):
        assert (await post(client, f"/t/{org.slug}/settings{path}", **data)).status_code == 403, path
    assert (await roles_of(db, org))["viewer"].permissions == {"customers.read"}  # nothing changed


async def test_a_risk_manager_without_other_settings_rights_lands_on_the_warning_rules(client, db, org):
    admin = await principal_of(db, org.tenant, org.admin_email)
    async with tenant_session(db, org.tenant) as session:
        await AccessAdminService(session, admin).create_role(
            "watcher", record_scope="all", permissions={"customers.read", "risk.manage"}
        )
    email = await add_user(db, org.tenant, "watcher")
    await web_sign_in(client, org.slug, email)
    customers = await client.get(f"/t/{org.slug}/customers")
    home = await client.get(f"/t/{org.slug}/settings", follow_redirects=False)
    assert f'href="/t/{org.slug}/settings"' in customers.text  # the main navigation offers Settings
    assert home.status_code == 303 and home.headers["location"] == f"/t/{org.slug}/settings/warnings"
    page = await client.get(home.headers["location"])
    assert page.status_code == 200 and f'href="/t/{org.slug}/settings/warnings"' in page.text
    assert f'href="/t/{org.slug}/settings/classification"' not in page.text


async def test_a_user_admin_without_the_roles_right_still_gets_role_choices(client, db, org):
    admin = await principal_of(db, org.tenant, org.admin_email)
    async with tenant_session(db, org.tenant) as session:
        await AccessAdminService(session, admin).create_role(
            "hr_admin", record_scope="own", permissions={"admin.users"}
        )
    email = await add_user(db, org.tenant, "hr_admin")
    await web_sign_in(client, org.slug, email)
    home = await client.get(f"/t/{org.slug}/settings", follow_redirects=False)
    assert home.headers["location"] == f"/t/{org.slug}/settings/users"
    page = await client.get(home.headers["location"])
    assert page.status_code == 200
    invite_form = page.text.split('id="role" name="role"')[1].split("</select>")[0]
    assert 'value="loan_officer"' in invite_form and 'value="hr_admin"' in invite_form
    assert f'href="/t/{org.slug}/settings/roles"' not in page.text
    assert (await client.get(f"/t/{org.slug}/settings/roles")).status_code == 403


async def test_anonymous_visitors_are_sent_to_sign_in(client, org):
    response = await client.get(f"/t/{org.slug}/settings/users", follow_redirects=False)
    assert response.status_code == 303 and "/login" in response.headers["location"]


async def test_unknown_rows_are_not_found(org, admin):
    for path in (
        f"/users/{uuid.uuid4()}/assign",
        f"/users/{uuid.uuid4()}/status",
        "/users/nonsense/status",
        f"/roles/{uuid.uuid4()}",
        f"/roles/{uuid.uuid4()}/delete",
        f"/tokens/{uuid.uuid4()}/revoke",
        "/tokens/nonsense/revoke",
    ):
        response = await post(admin, f"/t/{org.slug}/settings{path}", role="viewer", record_scope="own")
        assert response.status_code == 404, path


# --- users and teams ---


async def test_an_invited_user_signs_in_with_the_password_shown_once(client, second_client, org, admin):
    email = f"Zhang.Wei.{secrets.token_hex(3)}@Bank.example"
    invited = await post(
        admin, f"/t/{org.slug}/settings/users", email=email, display_name="张伟", role="loan_officer", team=""
    )
    assert invited.status_code == 200 and "location" not in invited.headers  # rendered, not redirected
    assert invited.headers["cache-control"] == "no-store"
    password = input_value(invited.text, "new-password")
    assert len(password) >= 16
    assert email.lower() in invited.text and ZH("One-time password") in invited.text

    # Shown once: the users page afterwards does not have it.
    again = await admin.get(f"/t/{org.slug}/settings/users")
    assert password not in again.text and email.lower() in again.text

    assert (await web_sign_in(second_client, org.slug, email.lower(), password)).status_code == 303
    assert (await second_client.get(f"/t/{org.slug}/customers")).status_code == 200


async def test_a_duplicate_email_is_refused_in_chinese_and_the_form_is_kept(db, org, admin):
    email = await add_user(db, org.tenant, "viewer")
    response = await post(
        admin, f"/t/{org.slug}/settings/users", email=email.upper(), display_name="重复", role="viewer"
    )
    assert response.status_code == 422
    message = ZH("A user with this e-mail address already exists.")
    assert message != "A user with this e-mail address already exists." and message in response.text
    assert 'id="email-error"' in response.text and 'aria-invalid="true"' in response.text
    assert 'value="重复"' in response.text and 'id="new-password"' not in response.text


async def test_teams_are_listed_and_created(org, admin):
    created = await post(admin, f"/t/{org.slug}/settings/teams", name="  华东  分行 ")
    assert created.status_code == 303 and created.headers["location"] == f"/t/{org.slug}/settings/teams"
    page = await admin.get(f"/t/{org.slug}/settings/teams")
    assert "华东 分行" in page.text
    duplicate = await post(admin, f"/t/{org.slug}/settings/teams", name="华东 分行")
    assert duplicate.status_code == 422 and ZH("A team with this name already exists.") in duplicate.text


async def test_assigning_a_role_and_team_with_and_without_htmx(db, org, admin):
    await post(admin, f"/t/{org.slug}/settings/teams", name="深圳团队")
    users_page = await admin.get(f"/t/{org.slug}/settings/users")
    team_id = option_value(users_page.text, "深圳团队")
    email = await add_user(db, org.tenant, "loan_officer")
    user_id = await user_id_of(db, org, email)
    path = f"/t/{org.slug}/settings/users/{user_id}/assign"

    # Without JS: a plain POST, then back to the page with the row marked saved.
    plain = await post(admin, path, role="manager", team=team_id)
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/t/{org.slug}/settings/users?saved={user_id}#user-{user_id}"
    moved = await principal_of(db, org.tenant, email)
    assert moved.role == "manager" and str(moved.team_id) == team_id
    page = await admin.get(plain.headers["location"])
    assert ZH("Saved") in page.text

    # With htmx: only that user's row comes back.
    row = await post(admin, path, headers=HTMX, role="viewer", team="")
    assert row.status_code == 200
    assert "<html" not in row.text and row.text.lstrip().startswith(f'<tr id="user-{user_id}"')
    assert row.headers["cache-control"] == "no-store" and "HX-Request" in row.headers["vary"]
    assert 'class="saved"' in row.text
    moved = await principal_of(db, org.tenant, email)
    assert moved.role == "viewer" and moved.team_id is None

    refused = await post(admin, path, headers=HTMX, role="no_such_role", team="")
    assert refused.status_code == 422 and ZH("Unknown role.") in refused.text and "<html" not in refused.text
    refused = await post(admin, path, role="viewer", team="not-a-team")
    assert refused.status_code == 422 and ZH("Unknown team.") in refused.text and "<html" in refused.text


async def test_admins_cannot_change_their_own_role_or_disable_themselves(db, org, admin):
    own_id = await user_id_of(db, org, org.admin_email)
    base = f"/t/{org.slug}/settings/users/{own_id}"
    refused = await post(admin, f"{base}/assign", headers=HTMX, role="viewer", team="")
    assert refused.status_code == 422 and ZH("You cannot change your own role.") in refused.text
    refused = await post(admin, f"{base}/status", status="disabled")
    assert refused.status_code == 422 and ZH("You cannot disable yourself.") in refused.text
    assert (await principal_of(db, org.tenant, org.admin_email)).role == "admin"


async def test_disabling_a_signed_in_user_sends_them_to_sign_in(db, second_client, org, admin):
    email = await add_user(db, org.tenant, "loan_officer")
    assert (await web_sign_in(second_client, org.slug, email)).status_code == 303
    assert (await second_client.get(f"/t/{org.slug}/customers")).status_code == 200
    user_id = await user_id_of(db, org, email)

    row = await post(admin, f"/t/{org.slug}/settings/users/{user_id}/status", headers=HTMX, status="disabled")
    assert row.status_code == 200 and "<html" not in row.text and ZH("Disabled") in row.text
    page = await second_client.get(f"/t/{org.slug}/customers", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith(f"/t/{org.slug}/login")
    assert (await web_sign_in(second_client, org.slug, email)).status_code == 401

    enabled = await post(admin, f"/t/{org.slug}/settings/users/{user_id}/status", status="active")
    assert enabled.status_code == 303
    assert (await web_sign_in(second_client, org.slug, email)).status_code == 303


# --- roles: the permission matrix ---


def _row(page: str, role_id: str) -> str:
    return re.search(rf'<tr id="role-{role_id}".*?</tr>', page, re.S).group(0)


async def test_the_matrix_shows_every_permission_and_a_read_only_admin_row(db, org, admin):
    page = await admin.get(f"/t/{org.slug}/settings/roles")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for permission in ALL_PERMISSIONS:  # one column each, titled with the permission's name
        assert 'class="perm' in page.text and f'title="{permission}"' in page.text
    roles = await roles_of(db, org)
    admin_row = _row(page.text, str(roles["admin"].id))
    assert "<form" not in admin_row and admin_row.count(" disabled") == len(ALL_PERMISSIONS) + 1
    assert admin_row.count("checked") == len(ALL_PERMISSIONS)
    officer_row = _row(page.text, str(roles["loan_officer"].id))
    assert 'hx-post="' in officer_row and officer_row.count("checked") == len(
        roles["loan_officer"].permissions
    )
    assert ZH("Add and edit customers") in page.text and ZH("Loan officer") in page.text


async def test_unticking_customers_write_takes_it_from_loan_officers_and_ticking_restores(
    client, db, org, admin, second_client
):
    officer = await add_user(db, org.tenant, "loan_officer")
    await web_sign_in(second_client, org.slug, officer)
    role = (await roles_of(db, org))["loan_officer"]
    path = f"/t/{org.slug}/settings/roles/{role.id}"
    without_write = sorted(role.permissions - {"customers.write"})

    saved = await post(admin, path, record_scope=role.record_scope, permissions=without_write)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/t/{org.slug}/settings/roles?saved={role.id}#role-{role.id}"
    create = await post(second_client, f"/t/{org.slug}/customers/new", kind="individual", name="试写")
    assert create.status_code == 403
    listing = await second_client.get(f"/t/{org.slug}/customers")
    assert f'href="/t/{org.slug}/customers/new"' not in listing.text

    row = await post(
        admin, path, headers=HTMX, record_scope=role.record_scope, permissions=sorted(role.permissions)
    )
    assert row.status_code == 200 and "<html" not in row.text
    assert row.text.lstrip().startswith(f'<tr id="role-{role.id}"') and 'class="saved"' in row.text
    create = await post(second_client, f"/t/{org.slug}/customers/new", kind="individual", name="试写")
    assert create.status_code == 303
    assert (await roles_of(db, org))["loan_officer"].permissions == role.permissions


async def test_the_admin_row_cannot_be_changed(db, org, admin):
    role = (await roles_of(db, org))["admin"]
    path = f"/t/{org.slug}/settings/roles/{role.id}"
    message = ZH("The admin role always holds every permission.")
    plain = await post(admin, path, record_scope="own", permissions=["customers.read"])
    assert plain.status_code == 422 and message in plain.text and "<html" in plain.text
    partial = await post(admin, path, headers=HTMX, record_scope="own", permissions=[])
    assert partial.status_code == 422 and message in partial.text and "<html" not in partial.text
    after = (await roles_of(db, org))["admin"]
    assert after.permissions == ALL_PERMISSIONS and after.record_scope == role.record_scope


async def test_a_custom_role_is_created_used_and_deleted(db, org, admin):
    created = await post(
        admin,
        f"/t/{org.slug}/settings/roles",
        name="collector",
        record_scope="team",
        permissions=["customers.read", "export"],
    )
    assert created.status_code == 303
    role = (await roles_of(db, org))["collector"]
    assert role.permissions == {"customers.read", "export"} and role.record_scope == "team"
    page = await admin.get(created.headers["location"])
    assert 'data-role="collector"' in page.text and f"/roles/{role.id}/delete" in page.text

    invalid = await post(admin, f"/t/{org.slug}/settings/roles", name="Bad Name", permissions=["export"])
    assert invalid.status_code == 422
    assert ZH("Use 2-40 lower-case letters, digits or _, starting with a letter.") in invalid.text
    assert 'value="Bad Name"' in invalid.text and 'value="export" checked' in invalid.text

    # Held by a user: not offered for deletion, and refused if posted anyway.
    email = await add_user(db, org.tenant, "collector")
    page = await admin.get(f"/t/{org.slug}/settings/roles")
    assert f"/roles/{role.id}/delete" not in page.text
    refused = await post(admin, f"/t/{org.slug}/settings/roles/{role.id}/delete")
    assert refused.status_code == 422 and ZH("Users still hold this role.") in refused.text
    user_id = await user_id_of(db, org, email)
    await post(admin, f"/t/{org.slug}/settings/users/{user_id}/assign", role="viewer", team="")

    deleted = await post(admin, f"/t/{org.slug}/settings/roles/{role.id}/delete")
    assert deleted.status_code == 303 and "collector" not in await roles_of(db, org)
    builtin = (await roles_of(db, org))["viewer"]
    refused = await post(admin, f"/t/{org.slug}/settings/roles/{builtin.id}/delete")
    assert refused.status_code == 422 and ZH("Built-in roles cannot be deleted.") in refused.text


# --- API tokens ---


async def test_a_token_is_shown_once_holds_the_chosen_rights_and_is_revoked(client, org, admin):
    created = await post(
        admin,
        f"/t/{org.slug}/settings/tokens",
        name="核心系统同步",
        expires_at=(date.today() + timedelta(days=30)).isoformat(),
        permissions=["customers.read", "export"],
    )
    assert created.status_code == 200 and "location" not in created.headers
    assert created.headers["cache-control"] == "no-store"
    token = input_value(created.text, "new-token")
    assert token.startswith("tcrm_") and created.text.count(token) == 1
    assert ZH("Copy the token now. It is stored only as a hash and will not be shown again.") in created.text

    bearer = {"Authorization": f"Bearer {token}"}
    answer = await client.post("/graphql", json={"query": VIEWER}, headers=bearer)
    assert answer.status_code == 200
    assert set(answer.json()["data"]["viewer"]["permissions"]) == {"customers.read", "export"}

    listing = await admin.get(f"/t/{org.slug}/settings/tokens")
    assert token not in listing.text and "核心系统同步" in listing.text
    assert ZH("Export data") in listing.text
    token_id = re.search(r'<tr id="token-([0-9a-f-]{36})"', listing.text).group(1)
    revoked = await post(admin, f"/t/{org.slug}/settings/tokens/{token_id}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == f"/t/{org.slug}/settings/tokens"
    assert (await client.post("/graphql", json={"query": VIEWER}, headers=bearer)).status_code == 401
    listing = await admin.get(f"/t/{org.slug}/settings/tokens")
    assert f"/tokens/{token_id}/revoke" not in listing.text and ZH("Revoked") in listing.text


async def test_a_token_with_nothing_ticked_holds_all_of_its_users_rights(client, db, org):
    manager = await add_user(db, org.tenant, "manager")
    await web_sign_in(client, org.slug, manager)
    page = await client.get(f"/t/{org.slug}/settings/tokens")
    assert 'value="admin.roles"' not in page.text  # only the manager's own rights are offered
    assert 'value="customers.write"' in page.text
    created = await post(client, f"/t/{org.slug}/settings/tokens", name="all mine")
    assert created.status_code == 200
    token = input_value(created.text, "new-token")
    answer = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}
    )
    manager_rights = (await principal_of(db, org.tenant, manager)).permissions
    assert set(answer.json()["data"]["viewer"]["permissions"]) == manager_rights
    assert ZH("All of the user's rights") in created.text


async def test_token_form_refusals_keep_the_form(org, admin):
    past = await post(
        admin,
        f"/t/{org.slug}/settings/tokens",
        name="old",
        expires_at=(date.today() - timedelta(days=1)).isoformat(),
        permissions=["customers.read"],
    )
    assert past.status_code == 422 and ZH("The expiry must be in the future.") in past.text
    assert 'id="new-token"' not in past.text and 'value="customers.read" checked' in past.text
    garbled = await post(admin, f"/t/{org.slug}/settings/tokens", name="x", expires_at="31/12/2030")
    assert garbled.status_code == 422 and ZH("Enter a date as YYYY-MM-DD.") in garbled.text
    nameless = await post(admin, f"/t/{org.slug}/settings/tokens", name="  ")
    assert nameless.status_code == 422 and ZH("Name is required.") in nameless.text


# --- labels ---


def test_every_permission_and_built_in_role_has_a_label():
    assert set(PERMISSION_ORDER) == ALL_PERMISSIONS and len(PERMISSION_ORDER) == len(ALL_PERMISSIONS)
    assert set(PERMISSION_LABELS) == ALL_PERMISSIONS
    for label in [*PERMISSION_LABELS.values(), *ROLE_LABELS.values()]:
        assert ZH(label) != label, label
