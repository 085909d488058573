"""Access control and the audit trail: token expiry/revocation bookkeeping, audit events.

Guarantees enforced here:

- Audit events are append-only: DELETE and TRUNCATE are refused; UPDATE is refused except the one
  sealing step that fills an unsealed event's chain columns (``chain_seq``, ``prev_hash``,
  ``chain_hash``) and changes nothing else.
- ``chain_seq`` is unique: one chain, no forks.

Revision ID: 0003
Revises: 0001
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at           timestamptz NOT NULL,
    actor        text,
    roles        text[] NOT NULL DEFAULT '{}',
    action       text NOT NULL,
    target       text,
    outcome      text NOT NULL,
    status       smallint,
    client       text,
    request_id   text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    content_hash bytea NOT NULL,
    chain_seq    bigint UNIQUE,
    prev_hash    bytea,
    chain_hash   bytea,
    CHECK ((chain_seq IS NULL) = (chain_hash IS NULL) AND (chain_seq IS NULL) = (prev_hash IS NULL))
);
CREATE INDEX audit_events_unsealed ON audit_events (id) WHERE chain_seq IS NULL;
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
COMMENT ON COLUMN audit_events.xid IS 'the writing transaction (for investigation; sealing needs only commit visibility)';
COMMENT ON COLUMN audit_events.content_hash IS 'SHA-256 of the canonical content (every column from at to details)';
COMMENT ON COLUMN audit_events.chain_hash IS 'SHA-256(prev_hash || content_hash); prev_hash is the previous sealed event''s chain_hash';

CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.chain_seq IS NULL AND NEW.chain_seq IS NOT NULL
       AND (NEW.id, NEW.xid, NEW.at, NEW.actor, NEW.roles, NEW.action, NEW.target, NEW.outcome, NEW.status,
            NEW.client, NEW.request_id, NEW.details, NEW.content_hash)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.xid, OLD.at, OLD.actor, OLD.roles, OLD.action, OLD.target, OLD.outcome, OLD.status,
            OLD.client, OLD.request_id, OLD.details, OLD.content_hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_guard();

ALTER TABLE api_tokens ADD COLUMN revoked_by text;
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE audit_events")
    op.execute("DROP FUNCTION audit_events_guard()")
    op.execute("DROP INDEX api_tokens_principal")
    op.execute("ALTER TABLE api_tokens DROP COLUMN revoked_by")
