"""The lending book: full customer profile, collateral and appraisals, loans with their
instalments, repayments and allocations, five-category classification and its rules.

Revision ID: t0004
Revises: t0003

Instalments and allocations are derived state: the loan service replays the loan's
repayments over its contractual schedule (loans.ledger) after every repayment or reversal
and rewrites them, so arrears can be asked of SQL as of any date.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "t0004"
down_revision = "t0003"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 2)
CLASSES = "('normal', 'special_mention', 'substandard', 'doubtful', 'loss')"
# China's 2023 measures for the risk classification of financial assets: at least special
# mention when overdue, substandard after 90 days, doubtful after 270, loss after 360.
DEFAULT_RULES = [
    ("special_mention", 1, None),
    ("substandard", 91, None),
    ("doubtful", 271, None),
    ("loss", 361, None),
    ("substandard", None, "restructured"),
    ("special_mention", None, "litigation"),
    ("doubtful", None, "bankruptcy"),
]


def _created_updated() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def _user(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, UUID, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=nullable)


def upgrade() -> None:
    _customer_profile()
    _collateral()
    _loans()
    _repayments()
    _classification()


def _customer_profile() -> None:
    columns = [
        sa.Column("gender", sa.Text),
        sa.Column("birth_date", sa.Date),
        sa.Column("marital_status", sa.Text),
        sa.Column("occupation", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("assets", MONEY),
        sa.Column("liabilities", MONEY),
        sa.Column("credit_score", sa.Integer),
        sa.Column("credit_grade", sa.Text),
        sa.Column("tags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("source", sa.Text),
        sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    ]
    for column in columns:
        op.add_column("customers", column)
    checks = {
        "customers_gender": "gender IN ('male', 'female')",
        "customers_marital_status": "marital_status IN ('single', 'married', 'divorced', 'widowed')",
        "customers_occupation": "char_length(occupation) <= 100",
        "customers_industry": "char_length(industry) <= 100",
        "customers_assets": "assets >= 0",
        "customers_liabilities": "liabilities >= 0",
        "customers_credit_score": "credit_score BETWEEN 0 AND 1000",
        "customers_credit_grade": (
            "credit_grade IN ('AAA', 'AA', 'A', 'BBB', 'BB', 'B', 'CCC', 'CC', 'C', 'D')"
        ),
        "customers_tags": "cardinality(tags) <= 20",
        "customers_source": (
            "source IN ('walk_in', 'referral', 'online', 'partner', 'marketing', 'import', 'other')"
        ),
    }
    for name, condition in checks.items():
        op.create_check_constraint(name, "customers", condition)
    op.create_index("customers_tags", "customers", ["tags"], postgresql_using="gin")


def _collateral() -> None:
    op.create_table(
        "collateral",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("customer_id", UUID, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("location", sa.Text, nullable=False, server_default=""),
        sa.Column("region_code", sa.Text),
        sa.Column("area_m2", sa.Numeric(12, 2)),
        sa.Column("appraised_value", MONEY, nullable=False),
        sa.Column("appraised_on", sa.Date, nullable=False),
        sa.Column("title_status", sa.Text, nullable=False, server_default="clear"),
        sa.Column("lien_order", sa.SmallInteger, nullable=False, server_default="1"),
        *_created_updated(),
        sa.CheckConstraint(
            "kind IN ('residence', 'commercial', 'land', 'vehicle', 'equipment', 'deposit')",
            name="collateral_kind",
        ),
        sa.CheckConstraint("char_length(description) <= 500", name="collateral_description"),
        sa.CheckConstraint("char_length(location) <= 200", name="collateral_location"),
        sa.CheckConstraint("region_code ~ '^[0-9]{6}$'", name="collateral_region_code"),
        sa.CheckConstraint("area_m2 > 0", name="collateral_area"),
        sa.CheckConstraint("appraised_value >= 0", name="collateral_appraised_value"),
        sa.CheckConstraint(
            "title_status IN ('clear', 'mortgaged', 'pending', 'disputed', 'seized')",
            name="collateral_title_status",
        ),
        sa.CheckConstraint("lien_order BETWEEN 1 AND 9", name="collateral_lien_order"),
    )
    op.create_index("collateral_customer_id", "collateral", ["customer_id"])
    op.create_table(
        "collateral_appraisals",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("collateral_id", UUID, sa.ForeignKey("collateral.id", ondelete="CASCADE"), nullable=False),
        sa.Column("value", MONEY, nullable=False),
        sa.Column("appraised_on", sa.Date, nullable=False),
        sa.Column("appraiser", sa.Text, nullable=False, server_default=""),
        _user("recorded_by"),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("value >= 0", name="collateral_appraisals_value"),
        sa.CheckConstraint("char_length(appraiser) <= 200", name="collateral_appraisals_appraiser"),
    )
    op.create_index(
        "collateral_appraisals_collateral", "collateral_appraisals", ["collateral_id", "appraised_on"]
    )


def _loans() -> None:
    op.create_table(
        "loans",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("customer_id", UUID, sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("product", sa.Text, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("annual_rate", sa.Numeric(9, 6), nullable=False),
        sa.Column("term_months", sa.Integer, nullable=False),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("first_due_date", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("settled_on", sa.Date),
        sa.Column("classification", sa.Text, nullable=False, server_default="normal"),
        sa.Column("flags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        _user("created_by"),
        *_created_updated(),
        sa.CheckConstraint("char_length(btrim(product)) BETWEEN 1 AND 100", name="loans_product"),
        sa.CheckConstraint("amount > 0", name="loans_amount"),
        sa.CheckConstraint("annual_rate >= 0 AND annual_rate < 1", name="loans_annual_rate"),
        sa.CheckConstraint("term_months BETWEEN 1 AND 480", name="loans_term_months"),
        sa.CheckConstraint(
            "method IN ('equal_installment', 'equal_principal', 'interest_only', 'bullet')",
            name="loans_method",
        ),
        sa.CheckConstraint("first_due_date > start_date", name="loans_first_due_date"),
        sa.CheckConstraint(
            "status IN ('active', 'settled', 'written_off', 'cancelled')", name="loans_status"
        ),
        sa.CheckConstraint(f"classification IN {CLASSES}", name="loans_classification"),
        sa.CheckConstraint("cardinality(flags) <= 10", name="loans_flags"),
    )
    op.create_index("loans_customer_id", "loans", ["customer_id"])
    op.create_index("loans_status_classification", "loans", ["status", "classification"])
    op.create_index("loans_created_at_id", "loans", ["created_at", "id"])
    op.create_table(
        "loan_collateral",
        sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "collateral_id", UUID, sa.ForeignKey("collateral.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    op.create_index("loan_collateral_collateral_id", "loan_collateral", ["collateral_id"])
    op.create_table(
        "installments",
        sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("principal", MONEY, nullable=False),
        sa.Column("interest", MONEY, nullable=False),
        sa.Column("principal_paid", MONEY, nullable=False, server_default="0"),
        sa.Column("interest_paid", MONEY, nullable=False, server_default="0"),
        sa.Column("paid_on", sa.Date),
        sa.CheckConstraint("number >= 1", name="installments_number"),
        sa.CheckConstraint("principal >= 0 AND interest >= 0", name="installments_amounts"),
        sa.CheckConstraint(
            "principal_paid BETWEEN 0 AND principal AND interest_paid BETWEEN 0 AND interest",
            name="installments_paid",
        ),
    )
    # Arrears and "due soon" lists look for unpaid instalments by date.
    op.create_index(
        "installments_unpaid_due",
        "installments",
        ["due_date", "loan_id"],
        postgresql_where=sa.text("paid_on IS NULL"),
    )


def _repayments() -> None:
    op.create_table(
        "repayments",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("sequence", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False, server_default=""),
        _user("recorded_by"),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("reversed_at", sa.DateTime(timezone=True)),
        _user("reversed_by"),
        sa.Column("reversal_reason", sa.Text),
        sa.CheckConstraint("amount > 0", name="repayments_amount"),
        sa.CheckConstraint(
            "channel IN ('bank_transfer', 'auto_debit', 'cash', 'wechat', 'alipay', 'other')",
            name="repayments_channel",
        ),
        sa.CheckConstraint("char_length(reference) <= 100", name="repayments_reference"),
        sa.CheckConstraint(
            "(reversed_at IS NULL) = (reversal_reason IS NULL)", name="repayments_reversal_reason"
        ),
    )
    op.create_index("repayments_loan_id", "repayments", ["loan_id", "paid_on", "sequence"])
    op.create_table(
        "repayment_allocations",
        sa.Column("repayment_id", UUID, sa.ForeignKey("repayments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("interest", MONEY, nullable=False),
        sa.Column("principal", MONEY, nullable=False),
        sa.CheckConstraint("interest >= 0 AND principal >= 0", name="repayment_allocations_amounts"),
    )
    op.create_index("repayment_allocations_loan", "repayment_allocations", ["loan_id", "number"])


def _classification() -> None:
    op.create_table(
        "loan_classifications",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("loan_id", UUID, sa.ForeignKey("loans.id", ondelete="CASCADE"), nullable=False),
        sa.Column("classification", sa.Text, nullable=False),
        sa.Column("previous", sa.Text),
        sa.Column("suggested", sa.Text, nullable=False),
        sa.Column("days_past_due", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _user("decided_by"),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"classification IN {CLASSES}", name="loan_classifications_classification"),
        sa.CheckConstraint(f"suggested IN {CLASSES}", name="loan_classifications_suggested"),
        sa.CheckConstraint(
            "char_length(btrim(reason)) BETWEEN 3 AND 1000", name="loan_classifications_reason"
        ),
    )
    op.create_index("loan_classifications_loan", "loan_classifications", ["loan_id", "id"])
    rules = op.create_table(
        "classification_rules",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("classification", sa.Text, nullable=False),
        sa.Column("min_days_past_due", sa.Integer),
        sa.Column("flag", sa.Text),
        sa.CheckConstraint(f"classification IN {CLASSES}", name="classification_rules_classification"),
        sa.CheckConstraint(
            "(min_days_past_due IS NULL) <> (flag IS NULL)", name="classification_rules_one_condition"
        ),
        sa.CheckConstraint("min_days_past_due BETWEEN 1 AND 10000", name="classification_rules_dpd"),
        sa.CheckConstraint("flag ~ '^[a-z][a-z_]{1,39}$'", name="classification_rules_flag"),
    )
    op.bulk_insert(
        rules,
        [{"classification": c, "min_days_past_due": d, "flag": f} for c, d, f in DEFAULT_RULES],
    )


def downgrade() -> None:
    for table in (
        "classification_rules",
        "loan_classifications",
        "repayment_allocations",
        "repayments",
        "installments",
        "loan_collateral",
        "loans",
        "collateral_appraisals",
        "collateral",
    ):
        op.drop_table(table)
    op.drop_index("customers_tags", "customers")
    for column in (
        "gender",
        "birth_date",
        "marital_status",
        "occupation",
        "industry",
        "assets",
        "liabilities",
        "credit_score",
        "credit_grade",
        "tags",
        "source",
        "legal_hold",
    ):
        op.drop_column("customers", column)
