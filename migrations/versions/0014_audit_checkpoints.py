"""Audit checkpoints and need-to-know in audit events.

``audit_checkpoints`` holds, per sealing round that sealed anything, the chain position and head
hash it reached and the database's time, with an HMAC-SHA256 over them under
``STOCKPILE_AUDIT_KEY``, a key the database does not hold (``hmac`` is NULL when the sealer had no
key). ``stockpile audit verify`` proves the chain still reaches every checkpoint.

``audit_events.restricted`` marks an event whose actor held military clearance or whose handler
flagged it: readers without clearance see neither its target nor its details. Events are sealed
with chain version 2, whose link hash binds the flag; events sealed before this revision stay
version 1, their flag (set here from their actor's clearance today) outside any hash.

Guarantees enforced here:

- Checkpoints are append-only (UPDATE, DELETE and TRUNCATE refused); their counter runs 1, 2, 3…
  without gaps and each records a chain position beyond the previous one.
- An event's ``restricted`` flag and chain version never change after insert; every new event is
  chain version 2, and restricted whenever its actor is a principal with military clearance.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE audit_events ADD COLUMN restricted boolean NOT NULL DEFAULT false;
ALTER TABLE audit_events ADD COLUMN chain_version smallint NOT NULL DEFAULT 1 CHECK (chain_version IN (1, 2));
ALTER TABLE audit_events ALTER COLUMN chain_version SET DEFAULT 2;
COMMENT ON COLUMN audit_events.restricted IS 'need-to-know: the actor held military clearance or the handler flagged it; uncleared readers see no target, details or client';
COMMENT ON COLUMN audit_events.chain_version IS '1: chain_hash = SHA-256(prev_hash || content_hash) (sealed before 0014, restricted outside the hash); 2: SHA-256(prev_hash || content_hash || restricted byte)';

ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
UPDATE audit_events e SET restricted = true
  FROM principals p WHERE p.name = e.actor AND p.clearance = 'military';
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;

CREATE FUNCTION audit_events_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.chain_version := 2;
    IF NOT NEW.restricted AND NEW.actor IS NOT NULL THEN
        NEW.restricted := EXISTS (SELECT 1 FROM principals WHERE name = NEW.actor AND clearance = 'military');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_events_need_to_know BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_on_insert();

CREATE FUNCTION audit_events_flag_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an audit event''s restricted flag and chain version never change'
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_flag_fixed BEFORE UPDATE ON audit_events FOR EACH ROW
    WHEN (OLD.restricted IS DISTINCT FROM NEW.restricted OR OLD.chain_version IS DISTINCT FROM NEW.chain_version)
    EXECUTE FUNCTION audit_events_flag_frozen();

CREATE TABLE audit_checkpoints (
    counter   bigint PRIMARY KEY CHECK (counter >= 1),
    chain_seq bigint NOT NULL CHECK (chain_seq >= 1),
    head_hash bytea NOT NULL CHECK (length(head_hash) = 32),
    at        timestamptz NOT NULL,
    hmac      bytea CHECK (hmac IS NULL OR length(hmac) = 32)
);
COMMENT ON COLUMN audit_checkpoints.counter IS '1, 2, 3… without gaps: a gap shows removed checkpoints';
COMMENT ON COLUMN audit_checkpoints.head_hash IS 'the chain_hash of the event at chain_seq when the round ended';
COMMENT ON COLUMN audit_checkpoints.hmac IS 'HMAC-SHA256 under STOCKPILE_AUDIT_KEY of counter, chain_seq, head_hash and at (stockpile.domain.audit.checkpoint_message); NULL: sealed without a key';

CREATE FUNCTION audit_checkpoints_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last audit_checkpoints%ROWTYPE;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT * INTO last FROM audit_checkpoints ORDER BY counter DESC LIMIT 1;
        IF NEW.counter = coalesce(last.counter, 0) + 1 AND NEW.chain_seq > coalesce(last.chain_seq, 0) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'an audit checkpoint follows the last one: counter %, beyond chain position %',
            coalesce(last.counter, 0) + 1, coalesce(last.chain_seq, 0) USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'audit_checkpoints is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_follow BEFORE INSERT ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_guard();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_guard();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_guard();
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE audit_checkpoints")
    op.execute("DROP FUNCTION audit_checkpoints_guard()")
    op.execute("DROP TRIGGER audit_events_flag_fixed ON audit_events")
    op.execute("DROP TRIGGER audit_events_need_to_know ON audit_events")
    op.execute("DROP FUNCTION audit_events_flag_frozen()")
    op.execute("DROP FUNCTION audit_events_on_insert()")
    op.execute("ALTER TABLE audit_events DROP COLUMN chain_version")
    op.execute("ALTER TABLE audit_events DROP COLUMN restricted")
