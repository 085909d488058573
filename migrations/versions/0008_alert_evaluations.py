"""When each alert kind was last evaluated: the "last seen" of every unresolved alert of that kind.

An unresolved alert is, by definition, seen by every evaluation of its kind (otherwise that
evaluation resolves it). Recording the evaluation once per kind, instead of rewriting the
``last_seen_at`` of every open alert each minute, keeps a steady-state evaluation free of writes
(70,000 open expiry alerts at national scale would otherwise be 70,000 row versions a minute).
An alert's last seen is ``greatest(alerts.last_seen_at, alert_evaluations.evaluated_at)`` while it
is unresolved, and ``alerts.last_seen_at`` (the evaluation before the one that resolved it) after.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE alert_evaluations (
    kind          text PRIMARY KEY,
    evaluated_at  timestamptz NOT NULL
);
COMMENT ON TABLE alert_evaluations IS 'last evaluation per alert kind: every unresolved alert of the kind was seen then';
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE alert_evaluations")
