"""Platform operators: accounts with TOTP, their sessions, an append-only event log, support grants.

Revision ID: p0004
Revises: p0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID

revision = "p0004"
down_revision = "p0003"
branch_labels = None
depends_on = None

# The longest support access a tenant admin may grant in one go.
MAX_GRANT_HOURS = 72


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        # The TOTP secret wrapped by the master key ring (never stored in clear), and that key's id.
        sa.Column("totp_secret_wrapped", BYTEA, nullable=False),
        sa.Column("totp_master_key_id", sa.Text, nullable=False),
        # Set once the operator has proven the secret with a first code.
        sa.Column("totp_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
        # The newest TOTP time step accepted: a code of that step or older is never taken again.
        sa.Column("last_totp_step", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('active', 'disabled')", name="operators_status"),
        sa.CheckConstraint("email = lower(email)", name="operators_email_lower"),
        schema="platform",
    )
    op.create_table(
        "operator_sessions",
        sa.Column("token_hash", BYTEA, primary_key=True),
        sa.Column(
            "operator_id",
            UUID(as_uuid=True),
            sa.ForeignKey("platform.operators.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # False while the password is checked but the TOTP code is still due: such a session
        # authorises nothing but the code step.
        sa.Column("mfa_passed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema="platform",
    )
    op.create_index("operator_sessions_operator", "operator_sessions", ["operator_id"], schema="platform")
    op.create_table(
        "operator_events",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # No foreign keys: the log outlives operators' rows and deleted tenants alike.
        sa.Column("operator_id", UUID(as_uuid=True)),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text),
        sa.Column("tenant_slug", sa.Text),
        sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint("action ~ '^[a-z][a-z0-9_.]{0,62}$'", name="operator_events_action"),
        schema="platform",
    )
    op.create_index("operator_events_tenant", "operator_events", ["tenant_id", "id"], schema="platform")
    # Append-only, whoever asks: privileges keep the app role to SELECT and INSERT, and this
    # trigger refuses UPDATE and DELETE even to the table's owner.
    op.execute(
        """
        CREATE FUNCTION platform.operator_events_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'platform.operator_events is append-only';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER operator_events_append_only BEFORE UPDATE OR DELETE ON platform.operator_events"
        " FOR EACH ROW EXECUTE FUNCTION platform.operator_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER operator_events_no_truncate BEFORE TRUNCATE ON platform.operator_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION platform.operator_events_append_only()"
    )
    op.create_table(
        "support_grants",
        sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column(
            "tenant_id", sa.Text, sa.ForeignKey("platform.tenants.id", ondelete="CASCADE"), nullable=False
        ),
        # Tenant user ids (no foreign key can reach into a tenant schema); never an e-mail address.
        sa.Column("granted_by", UUID(as_uuid=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", UUID(as_uuid=True)),
        sa.CheckConstraint(
            f"ends_at > starts_at AND ends_at <= starts_at + interval '{MAX_GRANT_HOURS} hours'",
            name="support_grants_period",
        ),
        sa.CheckConstraint("length(reason) BETWEEN 1 AND 500", name="support_grants_reason"),
        schema="platform",
    )
    op.create_index("support_grants_tenant", "support_grants", ["tenant_id", "ends_at"], schema="platform")


def downgrade() -> None:
    op.drop_table("support_grants", schema="platform")
    op.drop_table("operator_events", schema="platform")
    op.execute("DROP FUNCTION platform.operator_events_append_only()")
    op.drop_table("operator_sessions", schema="platform")
    op.drop_table("operators", schema="platform")
