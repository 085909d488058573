"""Alerts with their history, and the notification outbox.

Guarantees enforced here:

- At most one unresolved alert per (kind, subject): partial unique index ``alerts_one_open``.
- Alert history is append-only (``alert_events`` refuses UPDATE and DELETE).
- Notifications are written to ``outbox`` in the transaction that changes the alert, so none is
  lost and none is sent for a change that rolled back.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE alerts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            text NOT NULL CHECK (kind IN ('shortfall', 'expiring', 'expired_on_hand', 'rotation_overdue',
                        'rotation_blocked', 'transfer_overdue', 'allocation_unfilled', 'count_discrepancy',
                        'ledger_invariant')),
    subject         text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('warning', 'critical')),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    title           text NOT NULL,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    warehouse_id    bigint REFERENCES warehouses (id),
    region_id       bigint REFERENCES regions (id),
    military        boolean NOT NULL DEFAULT false,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, subject) WHERE state <> 'resolved';
CREATE INDEX alerts_state ON alerts (state, kind);
COMMENT ON COLUMN alerts.subject IS 'what the alert is about, e.g. target:CODE, lot:ID, transfer:ID, account:ID';
COMMENT ON COLUMN alerts.military IS 'concerns military-owned stock: shown only to principals cleared for it';

CREATE TABLE alert_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id  uuid NOT NULL REFERENCES alerts (id),
    at        timestamptz NOT NULL DEFAULT now(),
    event     text NOT NULL CHECK (event IN ('opened', 'escalated', 'eased', 'acknowledged', 'resolved')),
    severity  text NOT NULL,
    actor     text,
    note      text
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

CREATE FUNCTION alert_history_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER alert_events_append_only BEFORE UPDATE OR DELETE ON alert_events
    FOR EACH ROW EXECUTE FUNCTION alert_history_is_append_only();

CREATE TABLE outbox (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    topic            text NOT NULL,
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    last_error       text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
COMMENT ON COLUMN outbox.id IS 'the event id receivers deduplicate on (delivery is at least once)';
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE outbox")
    op.execute("DROP TABLE alert_events")
    op.execute("DROP TABLE alerts")
    op.execute("DROP FUNCTION alert_history_is_append_only()")
