"""Need-to-know in rotation explanations: each order keeps its explanation in two wordings.

``explanation`` is for readers cleared for military stock; ``public_explanation`` is what the
others read: it names no target they may not see, no military owner's lot, and quotes no figure of
a target that counts military stock (see ``stockpile.domain.rotation``). An order written without
one (planned before this revision) has a public wording that says only that it is due.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rotation_orders ADD COLUMN public_explanation text NOT NULL "
               "DEFAULT 'due for rotation under its policy'")
    op.execute("COMMENT ON COLUMN rotation_orders.public_explanation IS "
               "'the explanation as a reader without military clearance reads it (no hidden target, no military lot, "
               "no figure counting military stock)'")


def downgrade() -> None:
    op.execute("ALTER TABLE rotation_orders DROP COLUMN public_explanation")
