"""Bench only: one added nullable column, one revision after the shipped tenant head.

Used through tenancy.migrations.Migrator("tenant", this folder) by bench/tenant_scale.py (and its
test); the shipped revisions never see it.
"""

import sqlalchemy as sa
from alembic import op

from tenantcrm.tenancy.migrations import head

revision = "bench_added_column"
down_revision = head("tenant")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("bench_note", sa.Text))


def downgrade() -> None:
    op.drop_column("customers", "bench_note")
