"""Stored per-customer live-loan figures for segments: outstanding, oldest unpaid due date, classes.

Revision ID: t0008
Revises: t0007

A row exists exactly for each customer with a live loan (active or written off); the
application refreshes it at the end of every write to a customer's loans (ADR 0010). The
backfill below computes every row from the loans as they stand, set-based.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "t0008"
down_revision = "t0007"
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO customer_loan_summary (customer_id, live_loans, outstanding, oldest_unpaid_due, classes)
SELECT l.customer_id,
       count(*),
       sum(l.amount - coalesce((SELECT sum(a.principal) FROM repayment_allocations a
                                WHERE a.loan_id = l.id), 0)),
       min((SELECT min(i.due_date) FROM installments i WHERE i.loan_id = l.id AND i.paid_on IS NULL)),
       array_agg(DISTINCT l.classification)
FROM loans l
WHERE l.status IN ('active', 'written_off')
GROUP BY l.customer_id
"""


def upgrade() -> None:
    op.create_table(
        "customer_loan_summary",
        sa.Column("customer_id", UUID, sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("live_loans", sa.Integer, nullable=False),
        sa.Column("outstanding", sa.Numeric(18, 2), nullable=False),
        sa.Column("oldest_unpaid_due", sa.Date),
        sa.Column("classes", ARRAY(sa.Text), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("live_loans > 0", name="customer_loan_summary_live"),
    )
    op.create_index("customer_loan_summary_outstanding", "customer_loan_summary", ["outstanding"])
    op.create_index("customer_loan_summary_oldest_unpaid_due", "customer_loan_summary", ["oldest_unpaid_due"])
    op.create_index(
        "customer_loan_summary_classes", "customer_loan_summary", ["classes"], postgresql_using="gin"
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("customer_loan_summary")
