"""A first end-to-end check that the fixtures give a working tenant."""

from tenantcrm.customers.service import CustomerService
from tenantcrm.tenancy.session import tenant_session
from tests.conftest import principal_of


async def test_admin_can_create_and_read_a_customer(db, tenant_a):
    principal = await principal_of(db, tenant_a.tenant, tenant_a.admin_email)
    async with tenant_session(db, tenant_a.tenant) as session:
        service = CustomerService(session, principal)
        created = await service.create_customer({"kind": "individual", "name": "张三"})
        again = await service.get_customer(str(created.id))
    assert again.name == "张三"
    assert again.owner.email == tenant_a.admin_email
    assert principal.role == "admin" and principal.record_scope == "all"
    assert "customers.write" in principal.permissions
