"""Spare tenants: provisioned ahead of time, claimed by the next create (ADR 0014).

Revision ID: p0005
Revises: p0004
"""

from alembic import op

revision = "p0005"
down_revision = "p0004"
branch_labels = None
depends_on = None


STATUSES = ("provisioning", "active", "suspended", "deleting")


def _allow_statuses(statuses: tuple[str, ...]) -> None:
    op.drop_constraint("tenants_status", "tenants", schema="platform", type_="check")
    listed = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint("tenants_status", "tenants", f"status IN ({listed})", schema="platform")


def upgrade() -> None:
    _allow_statuses((*STATUSES, "spare"))
    # A spare is named after its id, and nothing else is: no institution's slug can look like one.
    op.create_check_constraint(
        "tenants_spare_slug",
        "tenants",
        "slug = 'spare-' || id OR (status <> 'spare' AND slug !~ '^spare-[0-9a-f]{16}$')",
        schema="platform",
    )
    # The claim looks for a spare at head: a partial index keeps that one probe with any number of tenants.
    op.create_index(
        "tenants_spares",
        "tenants",
        ["schema_version", "created_at"],
        schema="platform",
        postgresql_where="status = 'spare'",
    )


def downgrade() -> None:
    # Delete spares with `tenantcrm tenants delete` first: this forgets their rows but leaves their schemas.
    op.execute("DELETE FROM platform.tenants WHERE status = 'spare'")
    op.drop_index("tenants_spares", "tenants", schema="platform")
    op.drop_constraint("tenants_spare_slug", "tenants", schema="platform", type_="check")
    _allow_statuses(STATUSES)
