"""Audit checkpoints, and `audit_events` as a retention category (delete only, at least 365 days).

Revision ID: t0009
Revises: t0008

Retention removes a prefix of the audit chain (ADR 0011). `audit_checkpoints` records each removal:
the seq and hash of the last removed event, the checkpoint before it, how many events went, the
cut-off, when, which run and who; `row_hash` chains the checkpoints to each other. Checkpoints are
append-only like events (trigger), and the tenant role only reads them.

The tenant role keeps no DELETE on `audit_events`. It calls `audit_prune`, a SECURITY DEFINER
function owned by the admin role that runs the migrations (the owner of every tenant table), with
the search path pinned to this schema. It removes only a prefix: events after the latest checkpoint
up to a given seq whose stored hash is the expected one, all linked to the one before and all
before a cut-off that the enabled audit_events policy allows as of now, and it records the
checkpoint in the same statement. The events trigger still refuses every UPDATE, and a DELETE of
any event that no checkpoint covers.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, UUID

revision = "t0009"
down_revision = "t0008"
branch_labels = None
depends_on = None

OLD_CATEGORIES = "('prospects', 'closed_customers', 'interactions', 'complaints', 'pii_access_log', 'sessions')"
CATEGORIES = (
    "('prospects', 'closed_customers', 'interactions', 'complaints', 'pii_access_log', 'sessions',"
    " 'audit_events')"
)
AUDIT_MIN_DAYS = 365
PRUNE_SIGNATURE = "audit_prune(bigint, bytea, timestamptz, uuid, text)"

# An event may be removed once a checkpoint covers it, and by nobody before; never changed.
EVENTS_TRIGGER = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql
SET search_path = {schema}, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT max(seq) FROM audit_checkpoints) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END $$
"""

CHECKPOINTS_TRIGGER = """
CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints are append-only';
END $$
"""

# The checkpoint's row hash: SHA-256 over the previous checkpoint's row hash and
# seq|hash hex|prev_seq|events_removed|at µs|cutoff µs|run id|actor (audit.service recomputes it).
PRUNE = """
CREATE FUNCTION audit_prune(p_through bigint, p_hash bytea, p_cutoff timestamptz, p_run_id uuid, p_actor text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp AS $$
DECLARE
    head_seq bigint;
    anchor_seq bigint := 0;
    anchor_hash bytea := '\\x'::bytea;
    anchor_row bytea := '\\x'::bytea;
    policy_days integer;
    policy_action text;
    policy_enabled boolean;
    stored bytea;
    prefix record;
    removed bigint;
    deleted bigint;
    at_now timestamptz := now();
BEGIN
    SELECT seq INTO head_seq FROM audit_chain_head WHERE id = 1 FOR UPDATE;
    SELECT r.period_days, r.action, r.enabled INTO policy_days, policy_action, policy_enabled
        FROM retention_policies r WHERE r.category = 'audit_events';
    IF policy_enabled IS NOT TRUE OR policy_action IS DISTINCT FROM 'delete' THEN
        RAISE EXCEPTION 'audit prune refused: the audit_events policy is not enabled';
    END IF;
    IF p_cutoff IS NULL OR p_cutoff > at_now - make_interval(days => policy_days) THEN
        RAISE EXCEPTION 'audit prune refused: the cut-off is later than the policy allows';
    END IF;
    IF p_run_id IS NULL OR p_actor IS NULL OR char_length(btrim(p_actor)) NOT BETWEEN 1 AND 320 THEN
        RAISE EXCEPTION 'audit prune refused: a run id and an actor are required';
    END IF;
    SELECT seq, hash, row_hash INTO anchor_seq, anchor_hash, anchor_row
        FROM audit_checkpoints ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        anchor_seq := 0;
        anchor_hash := '\\x'::bytea;
        anchor_row := '\\x'::bytea;
    END IF;
    IF p_through IS NULL OR p_through <= anchor_seq OR p_through > head_seq THEN
        RAISE EXCEPTION 'audit prune refused: the sequence number is outside the remaining chain';
    END IF;
    SELECT hash INTO stored FROM audit_events WHERE seq = p_through;
    IF stored IS NULL OR p_hash IS NULL OR stored <> p_hash THEN
        RAISE EXCEPTION 'audit prune refused: the event''s hash is not the expected one';
    END IF;
    SELECT count(*) AS events,
           count(*) FILTER (WHERE at >= p_cutoff) AS young,
           count(*) FILTER (
               WHERE seq <> coalesce(prior_seq, anchor_seq) + 1
                  OR prev_hash <> coalesce(prior_hash, anchor_hash)
           ) AS unlinked
        INTO prefix
        FROM (SELECT seq, at, prev_hash, lag(seq) OVER w AS prior_seq, lag(hash) OVER w AS prior_hash
              FROM audit_events WHERE seq <= p_through WINDOW w AS (ORDER BY seq)) AS e;
    removed := p_through - anchor_seq;
    IF prefix.young > 0 THEN
        RAISE EXCEPTION 'audit prune refused: an event of the prefix is not before the cut-off';
    END IF;
    IF prefix.events <> removed OR prefix.unlinked > 0 THEN
        RAISE EXCEPTION 'audit prune refused: the prefix is not one unbroken chain from the last checkpoint';
    END IF;
    INSERT INTO audit_checkpoints (seq, hash, prev_seq, events_removed, cutoff, at, run_id, actor, row_hash)
    VALUES (
        p_through, p_hash, anchor_seq, removed, p_cutoff, at_now, p_run_id, p_actor,
        sha256(anchor_row || convert_to(concat_ws('|',
            p_through, encode(p_hash, 'hex'), anchor_seq, removed,
            (extract(epoch FROM at_now) * 1000000)::bigint,
            (extract(epoch FROM p_cutoff) * 1000000)::bigint,
            p_run_id, p_actor), 'UTF8'))
    );
    DELETE FROM audit_events WHERE seq <= p_through;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    IF deleted <> removed THEN
        RAISE EXCEPTION 'audit prune refused: % events removed, % expected', deleted, removed;
    END IF;
    RETURN removed;
END $$
"""


def _schema() -> str:
    name = op.get_bind().scalar(sa.text("SELECT current_schema()"))
    return '"' + str(name).replace('"', '""') + '"'


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", BYTEA, nullable=False),
        sa.Column("prev_seq", sa.BigInteger, nullable=False),
        sa.Column("events_removed", sa.BigInteger, nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", UUID, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("row_hash", BYTEA, nullable=False),
        sa.CheckConstraint(
            "prev_seq >= 0 AND seq > prev_seq AND events_removed = seq - prev_seq",
            name="audit_checkpoints_range",
        ),
    )
    op.execute(CHECKPOINTS_TRIGGER)
    op.execute(
        "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints"
        " FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only()"
    )
    op.execute(EVENTS_TRIGGER.format(schema=schema))
    op.execute(PRUNE.format(schema=schema))
    # provisioning._grant_tenant_privileges grants EXECUTE to the tenant role.
    op.execute(f"REVOKE ALL ON FUNCTION {PRUNE_SIGNATURE} FROM PUBLIC")

    op.drop_constraint("retention_policies_category", "retention_policies", type_="check")
    op.create_check_constraint("retention_policies_category", "retention_policies", f"category IN {CATEGORIES}")
    # A hash chain cannot be anonymised (ADR 0011); a year at least, whatever the form allows.
    op.create_check_constraint(
        "retention_policies_audit_events",
        "retention_policies",
        f"category <> 'audit_events' OR (action = 'delete' AND period_days >= {AUDIT_MIN_DAYS})",
    )
    op.execute(
        "INSERT INTO retention_policies (category, period_days, action)"
        " VALUES ('audit_events', 1825, 'delete') ON CONFLICT (category) DO NOTHING"
    )


def downgrade() -> None:
    if op.get_bind().scalar(sa.text("SELECT EXISTS (SELECT 1 FROM audit_checkpoints)")):
        raise RuntimeError("t0009 cannot be undone once audit events were pruned: verify needs the checkpoints")
    op.execute("DELETE FROM retention_policies WHERE category = 'audit_events'")
    op.drop_constraint("retention_policies_audit_events", "retention_policies", type_="check")
    op.drop_constraint("retention_policies_category", "retention_policies", type_="check")
    op.create_check_constraint(
        "retention_policies_category", "retention_policies", f"category IN {OLD_CATEGORIES}"
    )
    op.execute(f"DROP FUNCTION {PRUNE_SIGNATURE}")
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$"
    )
    op.execute("ALTER FUNCTION audit_events_append_only() RESET search_path")
    op.drop_table("audit_checkpoints")
    op.execute("DROP FUNCTION audit_checkpoints_append_only()")
