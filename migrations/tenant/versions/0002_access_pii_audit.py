"""Roles and the permission matrix, teams, encrypted PII, API token scopes, PII access log, audit.

Revision ID: t0002
Revises: t0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, UUID

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None

# Built-in roles as first seeded; tenant admins edit the matrix afterwards.
BUILT_IN = {
    "admin": (
        "all",
        [
            "customers.read",
            "customers.write",
            "pii.reveal",
            "loans.write",
            "loans.classify",
            "risk.manage",
            "segments.manage",
            "export",
            "import",
            "admin.users",
            "admin.roles",
            "admin.retention",
            "audit.read",
            "api_tokens.manage",
        ],
    ),
    "manager": (
        "team",
        [
            "customers.read",
            "customers.write",
            "pii.reveal",
            "loans.write",
            "segments.manage",
            "export",
            "import",
            "api_tokens.manage",
        ],
    ),
    "loan_officer": ("own", ["customers.read", "customers.write", "loans.write", "import"]),
    "risk_officer": (
        "all",
        ["customers.read", "loans.classify", "risk.manage", "segments.manage", "pii.reveal"],
    ),
    "auditor": ("all", ["customers.read", "audit.read"]),
    "viewer": ("all", ["customers.read"]),
}


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("char_length(btrim(name)) BETWEEN 1 AND 100", name="teams_name"),
    )
    op.create_table(
        "roles",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("built_in", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("record_scope", sa.Text, nullable=False, server_default="own"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("record_scope IN ('own', 'team', 'all')", name="roles_record_scope"),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9_]{1,39}$'", name="roles_name"),
    )
    op.create_table(
        "role_permissions",
        sa.Column("role_id", UUID, sa.ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("permission", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("role_id", "permission"),
    )
    roles = sa.table("roles", sa.column("name"), sa.column("built_in"), sa.column("record_scope"))
    op.bulk_insert(
        roles, [{"name": n, "built_in": True, "record_scope": s} for n, (s, _) in BUILT_IN.items()]
    )
    for name, (_, permissions) in BUILT_IN.items():
        for permission in permissions:
            op.execute(
                sa.text(
                    "INSERT INTO role_permissions (role_id, permission)"
                    " SELECT id, :p FROM roles WHERE name = :n"
                ).bindparams(p=permission, n=name)
            )

    op.add_column("users", sa.Column("role_id", UUID, sa.ForeignKey("roles.id")))
    op.add_column("users", sa.Column("team_id", UUID, sa.ForeignKey("teams.id", ondelete="SET NULL")))
    op.execute("UPDATE users SET role_id = roles.id FROM roles WHERE roles.name = users.role")
    op.alter_column("users", "role_id", nullable=False)
    op.drop_column("users", "role")
    op.create_index("users_team_id", "users", ["team_id"])

    op.add_column("api_tokens", sa.Column("permissions", ARRAY(sa.Text)))  # NULL: all of the user's

    op.add_column("customers", sa.Column("team_id", UUID, sa.ForeignKey("teams.id", ondelete="SET NULL")))
    for field in ("national_id", "phone", "email", "address"):
        op.add_column("customers", sa.Column(f"{field}_enc", BYTEA))
    op.add_column("customers", sa.Column("national_id_bidx", BYTEA))
    op.add_column("customers", sa.Column("phone_bidx", BYTEA))
    op.add_column("customers", sa.Column("pii_key_version", sa.Integer))
    op.create_index("customers_national_id_bidx", "customers", ["national_id_bidx"])
    op.create_index("customers_phone_bidx", "customers", ["phone_bidx"])
    op.create_index("customers_team_id", "customers", ["team_id"])
    op.create_index("customers_pii_key_version", "customers", ["pii_key_version", "id"])

    op.create_table(
        "pii_access_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("user_id", UUID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("customer_id", UUID, nullable=False),  # kept after the customer is erased
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.CheckConstraint("char_length(btrim(purpose)) BETWEEN 3 AND 500", name="pii_access_log_purpose"),
        sa.CheckConstraint("channel IN ('web', 'api')", name="pii_access_log_channel"),
    )
    op.create_index("pii_access_log_customer", "pii_access_log", ["customer_id", "at"])
    op.create_index("pii_access_log_at", "pii_access_log", ["at"])

    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", UUID),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("entity_type", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text),
        sa.Column("changes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("prev_hash", BYTEA, nullable=False),
        sa.Column("hash", BYTEA, nullable=False),
    )
    op.create_index("audit_events_at", "audit_events", ["at"])
    op.create_index("audit_events_entity", "audit_events", ["entity_type", "entity_id"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", BYTEA, nullable=False),
        sa.CheckConstraint("id = 1", name="audit_chain_head_single_row"),
    )
    op.execute("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '\\x'::bytea)")
    # Append-only even for a role that somehow holds UPDATE or DELETE: the trigger refuses.
    op.execute(
        """
        CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events are append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events"
        " FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
    )


def downgrade() -> None:
    raise NotImplementedError("t0002 is not reversible: it moves users.role into roles")
