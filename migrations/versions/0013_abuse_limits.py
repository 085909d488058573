"""Abuse limits: request counters shared by every API process, and denied requests as counts.

``rate_counters`` holds, per limited key (a principal, a client address, an address's failed
authentications) and per fixed window, how many requests every API process admitted. Processes
add their own admissions in batches and read the others' back in the same statement. The table is
UNLOGGED: a counter that a crash loses only forgives one window, and no WAL is written for it.

``audit_denials`` holds denied requests (401, 403, 429) as counts per (minute, actor, route,
status) instead of one audit event each, so a flood of unauthenticated requests costs an upsert
per process and minute, not a row per request.

Guarantees enforced here:

- A denial count only grows: an UPDATE may raise ``count`` and change nothing else; DELETE and
  TRUNCATE are refused.
- One row per (minute, actor kind, actor, action, status); ``minute`` is a whole minute.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE UNLOGGED TABLE rate_counters (
    key        text NOT NULL,
    window_id  bigint NOT NULL,
    count      bigint NOT NULL CHECK (count >= 0),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, window_id)
);
COMMENT ON COLUMN rate_counters.key IS 'the limited thing: p:<principal id>, a:<client address>, f:<client address> (failed authentications)';
COMMENT ON COLUMN rate_counters.window_id IS 'floor(epoch seconds / window length) of the limit the key belongs to';
COMMENT ON COLUMN rate_counters.expires_at IS 'when the window stops mattering (the end of the window after it); older rows are deleted';
CREATE INDEX rate_counters_expiry ON rate_counters (expires_at);

CREATE TABLE audit_denials (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    minute     timestamptz NOT NULL CHECK (date_trunc('minute', minute) = minute),
    actor_kind text NOT NULL CHECK (actor_kind IN ('principal', 'address')),
    actor      text NOT NULL,
    action     text NOT NULL,
    status     smallint NOT NULL CHECK (status IN (401, 403, 429)),
    count      bigint NOT NULL CHECK (count > 0),
    UNIQUE (minute, actor_kind, actor, action, status)
);
COMMENT ON COLUMN audit_denials.actor IS 'the principal''s name, or the client address when no principal was authenticated';
COMMENT ON COLUMN audit_denials.action IS 'method and route template, e.g. GET /api/v1/lots/{lot_id}';
CREATE INDEX audit_denials_actor ON audit_denials (actor, id);

CREATE FUNCTION audit_denials_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.count >= OLD.count
       AND (NEW.id, NEW.minute, NEW.actor_kind, NEW.actor, NEW.action, NEW.status)
           IS NOT DISTINCT FROM (OLD.id, OLD.minute, OLD.actor_kind, OLD.actor, OLD.action, OLD.status) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_denials counts only grow' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_denials_only_grow BEFORE UPDATE OR DELETE ON audit_denials
    FOR EACH ROW EXECUTE FUNCTION audit_denials_guard();
CREATE TRIGGER audit_denials_no_truncate BEFORE TRUNCATE ON audit_denials
    FOR EACH STATEMENT EXECUTE FUNCTION audit_denials_guard();
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE audit_denials")
    op.execute("DROP FUNCTION audit_denials_guard()")
    op.execute("DROP TABLE rate_counters")
