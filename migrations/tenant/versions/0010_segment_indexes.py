"""Covering indexes for segments: the broad conditions and the record scope answered from indexes alone.

Revision ID: t0010
Revises: t0009

A broad segment (half the customers by grade or score, a third of the borrowers by balance) joins
hundreds of thousands of ids. With these indexes the planner reads them by index-only scans instead
of the tables' rows (bench/segments.py, shape2): the balance range with its customer ids, the
per-customer probes of balance and oldest unpaid due date, the score and grade with the customer id,
and one officer's customers (record scope own) with their grade and score, whose rows lie on almost
every page of `customers`. Two of them replace narrower indexes on the same leading column.
"""

from alembic import op

revision = "t0010"
down_revision = "t0009"
branch_labels = None
depends_on = None

# (name, table, key columns, included columns, the index it replaces: (name, key columns) or None)
INDEXES = (
    (
        "customer_loan_summary_outstanding_customer",
        "customer_loan_summary",
        ["outstanding"],
        ["customer_id"],
        ("customer_loan_summary_outstanding", ["outstanding"]),
    ),
    (
        "customer_loan_summary_customer_figures",
        "customer_loan_summary",
        ["customer_id"],
        ["outstanding", "oldest_unpaid_due"],
        None,
    ),
    (
        "customers_score_grade",
        "customers",
        ["credit_score", "credit_grade"],
        ["id"],
        ("customers_credit_score", ["credit_score"]),
    ),
    (
        "customers_owner_created_at_id",
        "customers",
        ["owner_id", "created_at", "id"],
        ["credit_grade", "credit_score"],
        ("customers_owner_id", ["owner_id"]),
    ),
)


def upgrade() -> None:
    for name, table, columns, included, replaced in INDEXES:
        op.create_index(name, table, columns, postgresql_include=included)
        if replaced is not None:
            op.drop_index(replaced[0], table)


def downgrade() -> None:
    for name, table, _columns, _included, replaced in reversed(INDEXES):
        if replaced is not None:
            op.create_index(replaced[0], table, replaced[1])
        op.drop_index(name, table)
