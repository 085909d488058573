"""The worker's job claims: one row per (job, slot), so a slot runs once across worker replicas.

Guarantees enforced here:

- ``(job, slot)`` is the primary key: a second worker's claim of the same slot finds the row and
  does not run the job.
- A claim carries a lease; a slot whose runner died (lease passed, not finished) may be taken over
  by exactly one other worker (``UPDATE … WHERE lease_until < now()`` under the row lock).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE job_runs (
    job          text NOT NULL,
    slot         bigint NOT NULL,
    claimed_by   text NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    lease_until  timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text CHECK (outcome IN ('ok', 'failed')),
    detail       jsonb,
    PRIMARY KEY (job, slot)
);
CREATE INDEX job_runs_recent ON job_runs (job, finished_at DESC) WHERE outcome = 'ok';
COMMENT ON COLUMN job_runs.slot IS 'the job''s interval number since the epoch: floor(epoch seconds / interval)';
COMMENT ON COLUMN job_runs.lease_until IS 'another worker may take the slot over after this, if it has not finished';
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE job_runs")
