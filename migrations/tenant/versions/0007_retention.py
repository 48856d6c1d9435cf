"""Retention policies per data category, retention runs, and erasure and access requests.

Revision ID: t0007
Revises: t0006

Policies are seeded disabled: nothing is deleted or anonymised until a tenant's admin turns a
policy on. `customers.anonymised_at` marks a customer whose personal data a run removed, so the
next run does not count it again.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None

CATEGORIES = "('prospects', 'closed_customers', 'interactions', 'complaints', 'pii_access_log', 'sessions')"
# (category, period in days, action): a starting point the admin reviews before enabling.
DEFAULT_POLICIES = [
    ("prospects", 730, "delete"),
    ("closed_customers", 1825, "anonymise"),
    ("interactions", 1825, "anonymise"),
    ("complaints", 1825, "anonymise"),
    ("pii_access_log", 1095, "delete"),
    ("sessions", 30, "delete"),
]


def upgrade() -> None:
    policies = op.create_table(
        "retention_policies",
        sa.Column("category", sa.Text, primary_key=True),
        sa.Column("period_days", sa.Integer, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name="retention_policies_category"),
        sa.CheckConstraint("period_days BETWEEN 30 AND 3650", name="retention_policies_period"),
        sa.CheckConstraint("action IN ('delete', 'anonymise')", name="retention_policies_action"),
        # An expired session holds nothing to anonymise.
        sa.CheckConstraint(
            "category <> 'sessions' OR action = 'delete'", name="retention_policies_sessions_delete"
        ),
    )
    op.bulk_insert(policies, [{"category": c, "period_days": d, "action": a} for c, d, a in DEFAULT_POLICIES])
    op.create_table(
        "retention_runs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("actor_id", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("actor", sa.Text, nullable=False),
        # {category: {"action", "period_days", "count"}}: numbers and choices only.
        sa.Column("counts", JSONB, nullable=False, server_default="{}"),
        sa.CheckConstraint("trigger IN ('manual', 'schedule', 'cli')", name="retention_runs_trigger"),
    )
    op.create_index("retention_runs_started", "retention_runs", ["started_at"])
    op.add_column("customers", sa.Column("anonymised_at", sa.DateTime(timezone=True)))
    op.create_index("customers_legal_hold", "customers", ["id"], postgresql_where=sa.text("legal_hold"))


def downgrade() -> None:
    op.drop_index("customers_legal_hold", "customers")
    op.drop_column("customers", "anonymised_at")
    op.drop_table("retention_runs")
    op.drop_table("retention_policies")
