"""Saved segments (filter trees) and the indexes segment queries lean on.

Revision ID: t0006
Revises: t0005
"""

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the segments work (issue 6)


def downgrade() -> None:
    pass
