"""Metric snapshots: the worker's periodic aggregate of the reserve, served by the API from memory.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE metric_snapshots (
            name       text PRIMARY KEY,
            taken_at   timestamptz NOT NULL DEFAULT now(),
            samples    jsonb NOT NULL
        )""")
    op.execute("COMMENT ON COLUMN metric_snapshots.samples IS "
               "'[{metric, labels, value}]: aggregates only (category, region, sector, kind), never per lot'")


def downgrade() -> None:
    op.execute("DROP TABLE metric_snapshots")
