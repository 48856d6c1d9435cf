"""Nothing of a tenant survives on a pooled connection: one connection, many tenants."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InvalidRequestError, ProgrammingError

from tenantcrm.customers.service import CustomerFilter, CustomerService
from tenantcrm.tenancy.session import tenant_session, unscoped_platform_session
from tests.isolation.helpers import WHO_AND_WHERE, count_named, create_customer, principal_in, unique

ROUNDS = 8
# What current_setting('search_path') reports for the app role's default `SET search_path TO ''`.
EMPTY_SEARCH_PATH = '""'


class Boom(Exception):
    pass


async def test_one_connection_alternating_tenants_sees_only_each_tenants_own_customers(
    one_connection_db, tenant_a, tenant_b
):
    prefix = unique("pool")
    created = {tenant_a.slug: 0, tenant_b.slug: 0}
    backends: set[int] = set()
    for round_no in range(ROUNDS):
        for own, other in ((tenant_a, tenant_b), (tenant_b, tenant_a)):
            async with tenant_session(one_connection_db, own.tenant) as session:
                user, search_path, backend = (await session.execute(WHO_AND_WHERE)).one()
                assert (user, search_path) == (own.tenant.schema, own.tenant.schema)
                backends.add(backend)

                service = CustomerService(session, await principal_in(session, own))
                await service.create_customer(
                    {"kind": "individual", "name": f"{prefix}-{own.slug}-{round_no}"}
                )
                created[own.slug] += 1

                # The same (cached, prepared) statements, now in this tenant's schema.
                assert await count_named(session, prefix) == created[own.slug]
                assert await count_named(session, f"{prefix}-{own.slug}-") == created[own.slug]
                assert await count_named(session, f"{prefix}-{other.slug}-") == 0
                page = await service.list_customers(filter=CustomerFilter(search=prefix), first=100)
                assert page.total_count == created[own.slug]
                assert {c.name.rsplit("-", 1)[0] for c in page.customers} == {f"{prefix}-{own.slug}"}
    # Every session above really shared one server connection.
    assert len(backends) == 1
    assert created == {tenant_a.slug: ROUNDS, tenant_b.slug: ROUNDS}


async def _who_and_where_unscoped(db) -> tuple[str, str, int]:
    async with unscoped_platform_session(db) as session:
        user, search_path, backend = (await session.execute(WHO_AND_WHERE)).one()
    return user, search_path, backend


async def _end_normally(session) -> None:
    return None


async def _end_with_python_exception(session) -> None:
    raise Boom


async def _end_with_sql_error(session) -> None:
    await session.execute(text("SELECT 1 / 0"))  # aborts the transaction, then rolls back


@pytest.mark.parametrize(
    ("ending", "raised"),
    [(_end_normally, None), (_end_with_python_exception, Boom), (_end_with_sql_error, DBAPIError)],
    ids=["commit", "python-exception-rollback", "sql-error-rollback"],
)
async def test_connection_back_in_the_pool_has_no_tenant_role_or_search_path(
    one_connection_db, settings, tenant_a, ending, raised
):
    before = await _who_and_where_unscoped(one_connection_db)
    assert before[:2] == (settings.app_role, EMPTY_SEARCH_PATH)

    outcome = None
    try:
        async with tenant_session(one_connection_db, tenant_a.tenant) as session:
            inside = (await session.execute(WHO_AND_WHERE)).one()
            assert tuple(inside) == (tenant_a.tenant.schema, tenant_a.tenant.schema, before[2])
            await ending(session)
    except (Boom, DBAPIError) as exc:
        outcome = exc
    if raised is None:
        assert outcome is None
    else:
        assert isinstance(outcome, raised)

    after = await _who_and_where_unscoped(one_connection_db)
    assert after == (settings.app_role, EMPTY_SEARCH_PATH, before[2])

    # And so the same connection, unscoped, resolves no tenant table at all.
    with pytest.raises(ProgrammingError, match="does not exist"):
        async with unscoped_platform_session(one_connection_db) as session:
            await session.execute(text("SELECT count(*) FROM customers"))


@pytest.mark.parametrize("ending", ["commit", "rollback"])
async def test_work_after_an_early_commit_in_a_tenant_session_is_refused(
    one_connection_db, settings, tenant_a, ending
):
    """SET LOCAL ends with the transaction, so work after a stray commit() or rollback() would
    be unscoped: the session refuses it rather than start a new transaction."""
    with pytest.raises(InvalidRequestError, match="closed transaction inside context manager"):
        async with tenant_session(one_connection_db, tenant_a.tenant) as session:
            assert await session.scalar(text("SELECT current_user")) == tenant_a.tenant.schema
            await getattr(session, ending)()
            await session.execute(text("SELECT count(*) FROM customers"))
    after = await _who_and_where_unscoped(one_connection_db)
    assert after[:2] == (settings.app_role, EMPTY_SEARCH_PATH)


async def test_temporary_table_from_one_tenant_session_does_not_shadow_the_next_tenants_table(
    db, one_connection_db, tenant_a, tenant_b
):
    marker = unique("shadowed")
    await create_customer(db, tenant_b, marker)
    try:
        async with tenant_session(one_connection_db, tenant_a.tenant) as session:
            await session.execute(text("CREATE TEMP TABLE customers AS SELECT * FROM customers"))
    except ProgrammingError as refused:  # the fix: a tenant cannot leave one behind at all
        assert "permission denied to create temporary tables" in str(refused)
    async with tenant_session(one_connection_db, tenant_b.tenant) as session:
        assert await count_named(session, marker) == 1
