"""Users, web sessions, API tokens and customers.

Revision ID: t0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, UUID

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None

# Tenant schemas hold no enum or other custom types (text + CHECK instead), so
# prepared statements and asyncpg's codecs stay valid across schemas.


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("locale", sa.Text),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="users_status"),
        sa.CheckConstraint("email = lower(btrim(email)) AND email LIKE '%_@_%'", name="users_email"),
    )
    op.create_index("users_email_key", "users", ["email"], unique=True)

    op.create_table(
        "web_sessions",
        sa.Column("token_hash", BYTEA, primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("web_sessions_user_id", "web_sessions", ["user_id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token_hash", BYTEA, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "customers",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("region_code", sa.Text),
        sa.Column("monthly_income", sa.Numeric(18, 2)),
        sa.Column("risk_level", sa.Text, nullable=False, server_default="low"),
        sa.Column("status", sa.Text, nullable=False, server_default="prospect"),
        sa.Column("owner_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        *_timestamps(),
        sa.CheckConstraint("kind IN ('individual', 'enterprise')", name="customers_kind"),
        sa.CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 200", name="customers_name"),
        sa.CheckConstraint("region_code ~ '^[0-9]{6}$'", name="customers_region_code"),
        sa.CheckConstraint("monthly_income >= 0", name="customers_monthly_income"),
        sa.CheckConstraint("risk_level IN ('low', 'medium', 'high')", name="customers_risk_level"),
        sa.CheckConstraint("status IN ('prospect', 'active', 'settled', 'closed')", name="customers_status"),
    )
    # Keyset pagination: every sort order is (key, id) and has its index.
    op.create_index("customers_created_at_id", "customers", ["created_at", "id"])
    op.create_index("customers_name_id", "customers", ["name", "id"])
    op.create_index(
        "customers_income_id",
        "customers",
        [sa.text("coalesce(monthly_income, -1)"), "id"],
    )
    op.create_index("customers_owner_id", "customers", ["owner_id"])


def downgrade() -> None:
    op.drop_table("customers")
    op.drop_table("api_tokens")
    op.drop_table("web_sessions")
    op.drop_table("users")
