"""Wrapped per-tenant data keys and key-rotation progress.

Revision ID: p0002
Revises: p0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_keys",
        sa.Column(
            "tenant_id", sa.Text, sa.ForeignKey("platform.tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("wrapped_data_key", BYTEA, nullable=False),
        sa.Column("wrapped_index_key", BYTEA, nullable=False),
        sa.Column("master_key_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant_id", "version"),
        sa.CheckConstraint("version >= 1", name="tenant_keys_version"),
        schema="platform",
    )


def downgrade() -> None:
    op.drop_table("tenant_keys", schema="platform")
