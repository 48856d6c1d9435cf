"""Alembic environment for the tenant schema; run through tenantcrm.tenancy.migrations."""

from alembic import context

from tenantcrm.tenancy.migrations import configure_from_env

configure_from_env(context)
