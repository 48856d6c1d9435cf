"""Retention policies per data category, retention runs, and erasure and access requests.

Revision ID: t0007
Revises: t0006
"""

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the retention work (issue 6)


def downgrade() -> None:
    pass
