"""Working the relationship: interactions and follow-ups, complaints, risk cases and measures,
early-warning rules and flags, tenant settings, and import jobs with their staged rows.

Revision ID: t0005
Revises: t0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, UUID

revision = "t0005"
down_revision = "t0004"
branch_labels = None
depends_on = None

WARNING_KINDS = "('days_past_due', 'classification_worsened', 'debt_to_income', 'no_contact_with_overdue')"
IMPORT_STATUSES = "('uploaded', 'mapped', 'staging', 'staged', 'committing', 'done', 'failed', 'cancelled')"
DEFAULT_WARNING_RULES = [
    # (kind, threshold, enabled)
    ("days_past_due", 30, True),
    ("classification_worsened", None, True),
    ("debt_to_income", 0.5, True),
    ("no_contact_with_overdue", 90, True),
]


def _now(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now())


def _user(name: str) -> sa.Column:
    return sa.Column(name, UUID, sa.ForeignKey("users.id", ondelete="SET NULL"))


def _customer() -> sa.Column:
    return sa.Column("customer_id", UUID, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)


def _loan() -> sa.Column:
    return sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="SET NULL"))


def upgrade() -> None:
    _settings()
    _contacts()
    _complaints()
    _risk_cases()
    _warnings()
    _imports()


def _settings() -> None:
    settings = op.create_table(
        "tenant_settings",
        sa.Column("id", sa.SmallInteger, primary_key=True, server_default="1"),
        sa.Column("contact_interval_days", sa.Integer, nullable=False, server_default="30"),
        sa.Column("key_contact_interval_days", sa.Integer, nullable=False, server_default="14"),
        sa.Column("complaint_response_hours", sa.Integer, nullable=False, server_default="48"),
        sa.Column("default_locale", sa.Text, nullable=False, server_default="zh_CN"),
        _now("updated_at"),
        sa.CheckConstraint("id = 1", name="tenant_settings_single_row"),
        sa.CheckConstraint("contact_interval_days BETWEEN 1 AND 3650", name="tenant_settings_contact"),
        sa.CheckConstraint(
            "key_contact_interval_days BETWEEN 1 AND 3650", name="tenant_settings_key_contact"
        ),
        sa.CheckConstraint("complaint_response_hours BETWEEN 1 AND 8760", name="tenant_settings_complaint"),
        sa.CheckConstraint("default_locale IN ('zh_CN', 'en')", name="tenant_settings_locale"),
    )
    op.bulk_insert(settings, [{"id": 1}])
    op.add_column(
        "customers", sa.Column("key_customer", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column("customers", sa.Column("last_contact_at", sa.DateTime(timezone=True)))
    op.create_index("customers_last_contact_at", "customers", ["last_contact_at"])


def _contacts() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", UUID, primary_key=True),
        _customer(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("next_step", sa.Text, nullable=False, server_default=""),
        _user("author_id"),
        _now("created_at"),
        sa.CheckConstraint(
            "channel IN ('phone', 'visit', 'wechat', 'email', 'meeting')", name="interactions_channel"
        ),
        sa.CheckConstraint("char_length(btrim(summary)) BETWEEN 1 AND 2000", name="interactions_summary"),
        sa.CheckConstraint("char_length(next_step) <= 500", name="interactions_next_step"),
    )
    op.create_index("interactions_customer_at", "interactions", ["customer_id", "at"])
    # A follow-up is a dated task on a customer for one officer; a planned visit is one whose
    # channel is "visit". It may come from an interaction ("next step") or stand alone.
    op.create_table(
        "follow_ups",
        sa.Column("id", UUID, primary_key=True),
        _customer(),
        sa.Column("interaction_id", UUID, sa.ForeignKey("interactions.id", ondelete="SET NULL")),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("channel", sa.Text, nullable=False, server_default="phone"),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        _user("assignee_id"),
        _user("created_by"),
        _now("created_at"),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        _user("done_by"),
        sa.CheckConstraint(
            "channel IN ('phone', 'visit', 'wechat', 'email', 'meeting')", name="follow_ups_channel"
        ),
        sa.CheckConstraint("char_length(note) <= 500", name="follow_ups_note"),
    )
    op.create_index(
        "follow_ups_open_assignee",
        "follow_ups",
        ["assignee_id", "due_on"],
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.create_index("follow_ups_customer", "follow_ups", ["customer_id", "due_on"])


def _complaints() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", UUID, primary_key=True),
        _customer(),
        _loan(),
        sa.Column("kind", sa.Text, nullable=False, server_default="complaint"),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        _user("assignee_id"),
        _user("created_by"),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint("kind IN ('complaint', 'feedback')", name="complaints_kind"),
        sa.CheckConstraint(
            "category IN ('service', 'fees', 'interest_rate', 'collection', 'product', 'privacy', 'other')",
            name="complaints_category",
        ),
        sa.CheckConstraint("char_length(btrim(content)) BETWEEN 1 AND 5000", name="complaints_content"),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'resolved')", name="complaints_status"),
        sa.CheckConstraint("char_length(resolution) <= 5000", name="complaints_resolution"),
        sa.CheckConstraint(
            "(status = 'resolved') = (resolved_at IS NOT NULL)", name="complaints_resolved_at"
        ),
    )
    op.create_index("complaints_customer", "complaints", ["customer_id", "received_at"])
    op.create_index(
        "complaints_open_respond_by",
        "complaints",
        ["respond_by"],
        postgresql_where=sa.text("status <> 'resolved'"),
    )


def _risk_cases() -> None:
    op.create_table(
        "risk_cases",
        sa.Column("id", UUID, primary_key=True),
        _customer(),
        _loan(),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("warning_id", UUID),  # the early-warning flag it was opened from, if any
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        _user("owner_id"),
        _user("opened_by"),
        _now("opened_at"),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text, nullable=False, server_default=""),
        sa.Column("lessons", sa.Text, nullable=False, server_default=""),
        _now("updated_at"),
        sa.CheckConstraint(
            "trigger IN ('early_warning', 'overdue', 'complaint', 'external', 'manual')",
            name="risk_cases_trigger",
        ),
        sa.CheckConstraint(
            "char_length(btrim(description)) BETWEEN 1 AND 5000", name="risk_cases_description"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'resolved', 'closed')", name="risk_cases_status"
        ),
        sa.CheckConstraint(
            "(status IN ('resolved', 'closed')) = (closed_at IS NOT NULL)", name="risk_cases_closed_at"
        ),
        sa.CheckConstraint(
            "char_length(outcome) <= 5000 AND char_length(lessons) <= 5000", name="risk_cases_text"
        ),
    )
    op.create_index("risk_cases_customer", "risk_cases", ["customer_id", "opened_at"])
    op.create_index("risk_cases_status", "risk_cases", ["status", "opened_at"])
    op.create_table(
        "risk_measures",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("case_id", UUID, sa.ForeignKey("risk_cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        _user("owner_id"),
        sa.Column("due_on", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="planned"),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        _user("created_by"),
        _now("created_at"),
        sa.CheckConstraint(
            "char_length(btrim(description)) BETWEEN 1 AND 1000", name="risk_measures_description"
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'in_progress', 'done', 'cancelled')", name="risk_measures_status"
        ),
        sa.CheckConstraint("(status = 'done') = (done_at IS NOT NULL)", name="risk_measures_done_at"),
    )
    op.create_index("risk_measures_case", "risk_measures", ["case_id", "due_on"])


def _warnings() -> None:
    rules = op.create_table(
        "warning_rules",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False, unique=True),
        sa.Column("threshold", sa.Numeric(12, 4)),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.CheckConstraint(
            f"kind IN {WARNING_KINDS}",
            name="warning_rules_kind",
        ),
        sa.CheckConstraint("threshold IS NULL OR threshold > 0", name="warning_rules_threshold"),
    )
    op.bulk_insert(rules, [{"kind": k, "threshold": t, "enabled": e} for k, t, e in DEFAULT_WARNING_RULES])
    op.create_table(
        "warnings",
        sa.Column("id", UUID, primary_key=True),
        _customer(),
        sa.Column("kind", sa.Text, nullable=False),
        # Why, as data (days past due, ratio, classes): rendered in the reader's language.
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        _now("raised_at"),
        sa.Column("cleared_at", sa.DateTime(timezone=True)),
        sa.Column("case_id", UUID, sa.ForeignKey("risk_cases.id", ondelete="SET NULL")),
        sa.CheckConstraint(
            f"kind IN {WARNING_KINDS}",
            name="warnings_kind",
        ),
    )
    # One live flag per customer and rule; cleared ones stay as history.
    op.create_index(
        "warnings_live",
        "warnings",
        ["customer_id", "kind"],
        unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def _imports() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False, server_default="customers"),
        sa.Column("file_name", sa.Text, nullable=False),
        # The uploaded file, encrypted with the tenant's PII key (it holds identity numbers);
        # dropped when the job finishes.
        sa.Column("file_enc", BYTEA),
        sa.Column("pii_key_version", sa.Integer),
        sa.Column("sheet", sa.Text),
        sa.Column("headers", JSONB, nullable=False, server_default="[]"),
        sa.Column("mapping", JSONB, nullable=False, server_default="{}"),
        sa.Column("mode", sa.Text, nullable=False, server_default="skip_invalid"),
        sa.Column("status", sa.Text, nullable=False, server_default="uploaded"),
        sa.Column("total_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("staged_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("valid_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("invalid_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("duplicate_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        _user("created_by"),
        _now("created_at"),
        _now("updated_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('customers', 'loans')", name="import_jobs_kind"),
        sa.CheckConstraint("mode IN ('all_or_nothing', 'skip_invalid')", name="import_jobs_mode"),
        sa.CheckConstraint(
            f"status IN {IMPORT_STATUSES}",
            name="import_jobs_status",
        ),
        sa.CheckConstraint("char_length(file_name) <= 255", name="import_jobs_file_name"),
    )
    op.create_index("import_jobs_created", "import_jobs", ["created_at"])
    # Rows validated and encrypted in resumable chunks; the commit step turns the valid ones into
    # customers (and loans) in one transaction, so an interrupted import leaves nothing half-written.
    op.create_table(
        "import_rows",
        sa.Column("job_id", UUID, sa.ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_number", sa.Integer, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        # Clean values without PII; PII travels only in `pii_enc` (encrypted JSON).
        sa.Column("values", JSONB, nullable=False, server_default="{}"),
        sa.Column("pii_enc", BYTEA),
        sa.Column("national_id_bidx", BYTEA),
        sa.Column("phone_bidx", BYTEA),
        # Field, code and message id of each problem: never the refused value itself.
        sa.Column("errors", JSONB, nullable=False, server_default="[]"),
        sa.Column("notes", sa.Text, nullable=False, server_default=""),
        sa.Column("customer_id", UUID),
        sa.CheckConstraint("status IN ('valid', 'invalid', 'duplicate')", name="import_rows_status"),
    )
    op.create_index("import_rows_national_id", "import_rows", ["job_id", "national_id_bidx"])


def downgrade() -> None:
    for table in (
        "import_rows",
        "import_jobs",
        "warnings",
        "warning_rules",
        "risk_measures",
        "risk_cases",
        "complaints",
        "follow_ups",
        "interactions",
        "tenant_settings",
    ):
        op.drop_table(table)
    op.drop_index("customers_last_contact_at", "customers")
    op.drop_column("customers", "last_contact_at")
    op.drop_column("customers", "key_customer")
