"""Alembic environment for the platform schema; run through tenantcrm.tenancy.migrations."""

from alembic import context

from tenantcrm.tenancy.migrations import configure_from_env

configure_from_env(context)
