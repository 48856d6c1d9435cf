"""The complaint list's two orders as keyset pages: the most urgent first, and by time received.

Revision ID: t0012
Revises: t0011

ComplaintOrder's keys, so a page (either direction) is an index range read, not a sort of every
complaint in scope: (status = 'resolved', respond_by, id) for "most urgent first" (open ones before
resolved ones, then by response target) and (received_at, id). complaints_open_respond_by (t0005)
stays for the overdue filter; complaints_customer (t0005) serves one customer's complaints.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0012"
down_revision = "t0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "complaints_urgency_id", "complaints", [sa.text("(status = 'resolved')"), "respond_by", "id"]
    )
    op.create_index("complaints_received_at_id", "complaints", ["received_at", "id"])


def downgrade() -> None:
    op.drop_index("complaints_received_at_id", "complaints")
    op.drop_index("complaints_urgency_id", "complaints")
