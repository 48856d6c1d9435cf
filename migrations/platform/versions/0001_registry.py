"""Tenant registry and sign-in throttling.

Revision ID: p0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "p0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("slug", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("plan", sa.Text, nullable=False, server_default="standard"),
        sa.Column("schema_name", sa.Text, nullable=False, unique=True),
        sa.Column("schema_version", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "status IN ('provisioning', 'active', 'suspended', 'deleting')", name="tenants_status"
        ),
        sa.CheckConstraint("id ~ '^[0-9a-f]{16}$'", name="tenants_id_format"),
        # Provisioning and migrations quote the schema name into DDL: it can only be this.
        sa.CheckConstraint("schema_name = 't_' || id", name="tenants_schema_name"),
        schema="platform",
    )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True)),
        schema="platform",
    )


def downgrade() -> None:
    op.drop_table("login_throttle", schema="platform")
    op.drop_table("tenants", schema="platform")
