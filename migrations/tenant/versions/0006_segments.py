"""Saved segments (filter trees) and the indexes segment queries lean on.

Revision ID: t0006
Revises: t0005

Already there from earlier revisions: customers(owner_id), (team_id), (last_contact_at),
(created_at, id), GIN on tags; loans(customer_id), (status, classification).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None

# (name, table, columns, where): the customer columns segments compare most, and the
# per-customer probes of the EXISTS conditions (live loans, open cases, live flags).
INDEXES = (
    ("customers_region_code", "customers", ["region_code"], None),
    ("customers_risk_level", "customers", ["risk_level"], None),
    ("customers_credit_grade", "customers", ["credit_grade"], None),
    ("customers_status", "customers", ["status"], None),
    ("customers_credit_score", "customers", ["credit_score"], None),
    ("loans_customer_status", "loans", ["customer_id", "status", "classification"], None),
    ("loans_product_customer", "loans", ["product", "customer_id"], None),
    ("warnings_live_customer", "warnings", ["customer_id"], "cleared_at IS NULL"),
    ("risk_cases_open_customer", "risk_cases", ["customer_id"], "status IN ('open', 'in_progress')"),
)


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("filter", JSONB, nullable=False),
        sa.Column("owner_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("team_id", UUID, sa.ForeignKey("teams.id", ondelete="SET NULL")),
        sa.Column("shared", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 100", name="segments_name"),
        sa.CheckConstraint("char_length(description) <= 1000", name="segments_description"),
        sa.CheckConstraint("jsonb_typeof(filter) = 'object'", name="segments_filter"),
    )
    op.create_index("segments_owner", "segments", ["owner_id", "name"])
    op.create_index("segments_team_shared", "segments", ["team_id"], postgresql_where=sa.text("shared"))
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, postgresql_where=sa.text(where) if where else None)


def downgrade() -> None:
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table)
    op.drop_table("segments")
