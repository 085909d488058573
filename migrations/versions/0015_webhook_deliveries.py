"""Webhook deliveries per (message, endpoint), leased, and messages that know who may read them.

An outbox message is fanned out once into one ``outbox_deliveries`` row per configured endpoint
entitled to it; each row is claimed with a short lease, sent with no transaction open, and its
outcome recorded apart, so a failing endpoint is retried without resending to the others and a
worker that dies mid-delivery only leaves a lease to expire. The message's ``attempts``,
``next_attempt_at`` and ``last_error`` move to its deliveries.

Guarantees enforced here:

- One delivery per (message, endpoint): primary key.
- A delivery to an endpoint without military clearance is never recorded for a message about
  military stock (trigger ``outbox_deliveries_need_to_know``).
- A message's ``military`` flag never goes back down once set (trigger ``outbox_military_sticks``),
  so a message withheld from uncleared endpoints cannot be released to them later.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE outbox ADD COLUMN military boolean NOT NULL DEFAULT true;
ALTER TABLE outbox ADD COLUMN dispatched_at timestamptz;
COMMENT ON COLUMN outbox.military IS
    'about military stock (or naming a military owner, lot or target): sent to cleared endpoints only; '
    'a writer that does not say so is assumed to be';
COMMENT ON COLUMN outbox.dispatched_at IS 'when the message was fanned out into its deliveries';
COMMENT ON COLUMN outbox.delivered_at IS 'when every endpoint entitled to the message had it (none entitled: at dispatch)';

UPDATE outbox o SET military = a.military FROM alerts a WHERE a.id::text = o.payload #>> '{alert,id}';
UPDATE outbox SET dispatched_at = delivered_at WHERE delivered_at IS NOT NULL;

DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN attempts, DROP COLUMN next_attempt_at, DROP COLUMN last_error;
CREATE INDEX outbox_undispatched ON outbox (created_at) WHERE dispatched_at IS NULL;

CREATE TABLE outbox_deliveries (
    message_id      uuid NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    endpoint        text NOT NULL,
    cleared         boolean NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until    timestamptz,
    leased_by       uuid,
    delivered_at    timestamptz,
    last_error      text,
    PRIMARY KEY (message_id, endpoint)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
COMMENT ON TABLE outbox_deliveries IS 'one message to one webhook endpoint: retried on its own';
COMMENT ON COLUMN outbox_deliveries.endpoint IS 'the endpoint URL as configured (without its clearance)';
COMMENT ON COLUMN outbox_deliveries.cleared IS 'the endpoint had military clearance when the message was fanned out';
COMMENT ON COLUMN outbox_deliveries.attempts IS 'sends started (counted when claimed, so a send that kills its worker still backs off)';
COMMENT ON COLUMN outbox_deliveries.leased_until IS
    'claimed by a delivering worker until then; a worker that dies leaves it to expire and the next run sends again';
COMMENT ON COLUMN outbox_deliveries.leased_by IS 'the delivery run holding the lease (a late outcome of a lost lease is ignored)';

CREATE FUNCTION outbox_delivery_need_to_know() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.cleared AND (SELECT military FROM outbox WHERE id = NEW.message_id) THEN
        RAISE EXCEPTION 'outbox message % concerns military stock: not for endpoint % without clearance',
            NEW.message_id, NEW.endpoint USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_deliveries_need_to_know BEFORE INSERT OR UPDATE OF cleared, message_id ON outbox_deliveries
    FOR EACH ROW EXECUTE FUNCTION outbox_delivery_need_to_know();

CREATE FUNCTION outbox_military_sticks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.military AND NOT NEW.military THEN
        RAISE EXCEPTION 'outbox message % concerns military stock; that cannot be undone', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_military_sticks BEFORE UPDATE OF military ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_military_sticks();
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE outbox_deliveries")
    op.execute("DROP FUNCTION outbox_delivery_need_to_know()")
    op.execute("DROP TRIGGER outbox_military_sticks ON outbox")
    op.execute("DROP FUNCTION outbox_military_sticks()")
    op.execute("DROP INDEX outbox_undispatched")
    op.execute("ALTER TABLE outbox ADD COLUMN attempts integer NOT NULL DEFAULT 0, "
               "ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(), ADD COLUMN last_error text")
    op.execute("CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL")
    op.execute("ALTER TABLE outbox DROP COLUMN dispatched_at, DROP COLUMN military")
