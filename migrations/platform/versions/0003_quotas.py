"""Per-tenant quotas on the registry: users, customers and storage; NULL means no limit.

Revision ID: p0003
Revises: p0002
"""

import sqlalchemy as sa
from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None

# NULL is "unlimited": plans carry no defaults today (every tenant is 'standard'), so a limit exists
# only where an operator set one. Zero is a real limit (nothing more may be added).
COLUMNS = ("max_users", "max_customers", "max_storage_mb")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("tenants", sa.Column(column, sa.BigInteger, nullable=True), schema="platform")
        op.create_check_constraint(
            f"tenants_{column}_nonnegative", "tenants", f"{column} IS NULL OR {column} >= 0", schema="platform"
        )


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_constraint(f"tenants_{column}_nonnegative", "tenants", schema="platform", type_="check")
        op.drop_column("tenants", column, schema="platform")
