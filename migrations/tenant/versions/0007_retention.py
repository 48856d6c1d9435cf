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
    _erasure_requests()
    op.add_column("customers", sa.Column("anonymised_at", sa.DateTime(timezone=True)))
    op.create_index("customers_legal_hold", "customers", ["id"], postgresql_where=sa.text("legal_hold"))


def _erasure_requests() -> None:
    # An erasure request (PIPL art. 47, GDPR art. 17) outlives the customer it erased: its
    # certificate says what was removed, when and by whom. `customer_id` has no foreign key for
    # that reason; `customer_ref` (the id's first 8 characters) is what the certificate shows.
    op.create_table(
        "erasure_requests",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("customer_id", UUID, nullable=False),
        sa.Column("customer_ref", sa.Text, nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("requester", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="requested"),
        sa.Column("requested_by", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("reviewed_by", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("review_note", sa.Text, nullable=False, server_default=""),
        sa.Column("executed_by", UUID, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("executed_at", sa.DateTime(timezone=True)),
        # What was removed, as counts per kind of record: never a value.
        sa.Column("certificate", JSONB),
        sa.CheckConstraint(
            "basis IN ('consent_withdrawn', 'purpose_fulfilled', 'retention_expired', 'unlawful',"
            " 'service_ended', 'other')",
            name="erasure_requests_basis",
        ),
        sa.CheckConstraint(
            "requester IN ('data_subject', 'representative', 'regulator', 'internal')",
            name="erasure_requests_requester",
        ),
        sa.CheckConstraint("action IN ('delete', 'anonymise')", name="erasure_requests_action"),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'rejected', 'executed')", name="erasure_requests_status"
        ),
        sa.CheckConstraint("char_length(review_note) <= 1000", name="erasure_requests_review_note"),
        sa.CheckConstraint(
            "(status = 'executed') = (certificate IS NOT NULL AND executed_at IS NOT NULL)",
            name="erasure_requests_certificate",
        ),
    )
    op.create_index("erasure_requests_requested", "erasure_requests", ["requested_at"])
    op.create_index("erasure_requests_customer", "erasure_requests", ["customer_id"])


def downgrade() -> None:
    op.drop_index("customers_legal_hold", "customers")
    op.drop_column("customers", "anonymised_at")
    op.drop_table("erasure_requests")
    op.drop_table("retention_runs")
    op.drop_table("retention_policies")
