"""A first end-to-end check that the fixtures give a working tenant."""

from tenantcrm.customers.service import CustomerService
from tenantcrm.tenancy.session import tenant_session


async def test_admin_can_create_and_read_a_customer(db, tenant_a, lifecycle):
    from tenantcrm.auth.permissions import Principal, permissions_of
    from tenantcrm.auth.service import find_user_by_email

    async with tenant_session(db, tenant_a.tenant) as session:
        user = await find_user_by_email(session, tenant_a.admin_email)
        principal = Principal(
            tenant_a.tenant, user.id, user.email, user.display_name, user.role, permissions_of(user.role)
        )
        service = CustomerService(session, principal)
        created = await service.create_customer({"kind": "individual", "name": "张三"})
        again = await service.get_customer(str(created.id))
    assert again.name == "张三"
    assert again.owner.email == tenant_a.admin_email
