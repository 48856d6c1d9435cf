"""Saved list views per user, and the index the loan list's order by amount pages on.

Revision ID: t0011
Revises: t0010

A saved view holds a list's columns, fixed-vocabulary filters and order; never a search term
(it may be an identity number or a phone). Names are unique per user and list; at most one view
per user and list is the default.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0011"
down_revision = "t0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("list", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("columns", JSONB, nullable=False),
        sa.Column("filters", JSONB, nullable=False),
        sa.Column("sort", sa.Text, nullable=False),
        sa.Column("descending", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("list IN ('customers')", name="saved_views_list"),
        sa.CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 60", name="saved_views_name"),
        sa.CheckConstraint("jsonb_typeof(columns) = 'array'", name="saved_views_columns"),
        sa.CheckConstraint("jsonb_typeof(filters) = 'object'", name="saved_views_filters"),
    )
    op.create_index("saved_views_user_list_name", "saved_views", ["user_id", "list", "name"], unique=True)
    op.create_index(
        "saved_views_one_default",
        "saved_views",
        ["user_id", "list"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    # The loan list's keyset pages by amount (by creation time: loans_created_at_id, t0004).
    op.create_index("loans_amount_id", "loans", ["amount", "id"])


def downgrade() -> None:
    op.drop_index("loans_amount_id", "loans")
    op.drop_table("saved_views")
