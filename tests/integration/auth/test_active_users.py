"""active_users: the colleagues work can be assigned to, by name, disabled ones left out."""

from __future__ import annotations

from tenantcrm.auth.admin_service import AccessAdminService
from tenantcrm.auth.service import active_user_id, active_users, find_user_by_email
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import add_user, principal_of


async def test_active_users_lists_the_tenants_active_users_by_name(db, fresh_tenant, tenant_b):
    tenant = fresh_tenant.tenant
    kept, leaving = await add_user(db, tenant, "loan_officer"), await add_user(db, tenant, "viewer")
    await add_user(db, tenant_b.tenant, "loan_officer")  # another tenant's: never listed
    admin = await principal_of(db, tenant, fresh_tenant.admin_email)
    async with tenant_session(db, tenant) as session:
        leaving_id = (await find_user_by_email(session, leaving)).id
        await AccessAdminService(session, admin).set_status(leaving_id, "disabled")
    async with tenant_session(db, tenant) as session:
        found = await active_users(session)
        kept_user = await find_user_by_email(session, kept)
        assert await active_user_id(session, leaving_id) is None
    assert set(dict(found)) == {admin.user_id, kept_user.id}
    assert [name for _, name in found] == sorted(name for _, name in found)
    assert dict(found)[kept_user.id] == kept_user.display_name
