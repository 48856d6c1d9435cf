"""Masked forms of customer PII, kept beside the ciphertexts; one customer per identity number.

Revision ID: t0003
Revises: t0002

A masked value (3701**********1234) is what everyone without pii.reveal sees; storing it at
write time means showing a list or a page never decrypts anything.
"""

import sqlalchemy as sa
from alembic import op

revision = "t0003"
down_revision = "t0002"
branch_labels = None
depends_on = None

FIELDS = ("national_id", "phone", "email", "address")


def upgrade() -> None:
    for field in FIELDS:
        op.add_column("customers", sa.Column(f"{field}_masked", sa.Text))
    # One customer per identity number, enforced by the database (the service checks first,
    # for a friendly message; two officers saving the same person at once meet here).
    op.drop_index("customers_national_id_bidx", "customers")
    op.create_index("customers_national_id_bidx", "customers", ["national_id_bidx"], unique=True)


def downgrade() -> None:
    op.drop_index("customers_national_id_bidx", "customers")
    op.create_index("customers_national_id_bidx", "customers", ["national_id_bidx"])
    for field in FIELDS:
        op.drop_column("customers", f"{field}_masked")
