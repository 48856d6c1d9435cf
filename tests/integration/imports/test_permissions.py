"""Importing needs `import` and the write rights of what it creates; the service checks them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenantcrm.auth.permissions import PermissionDenied
from tenantcrm.customers.models import Customer
from tests.conftest import add_user, principal_of
from tests.integration.imports.conftest import sample


async def test_a_viewer_cannot_import(shop, db):
    viewer = await principal_of(db, shop.tenant, await add_user(db, shop.tenant, "viewer"))
    with pytest.raises(PermissionDenied):
        await shop.run(sample("borrowers.xlsx"), "borrowers.xlsx", principal=viewer)
    assert await shop.count(Customer) == 0


async def test_collateral_and_loans_need_loans_write_whatever_the_kind(shop):
    no_lending = replace(shop.admin, permissions=frozenset({"customers.read", "customers.write", "import"}))
    with pytest.raises(PermissionDenied):
        await shop.run(sample("mortgage-customers.xlsx"), "mortgage-customers.xlsx", principal=no_lending)
    assert await shop.count(Customer) == 0
    job = await shop.run(sample("borrowers.xlsx"), "borrowers.xlsx", principal=no_lending)  # customers only
    assert (job.status, job.created_rows) == ("done", 60)
    with pytest.raises(PermissionDenied):
        await shop.run(sample("borrowers.xlsx"), "again.xlsx", principal=no_lending, kind="loans")
