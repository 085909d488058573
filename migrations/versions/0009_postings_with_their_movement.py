"""Postings are written with their movement: a recorded movement cannot be added to.

Guarantees 2 and 4 of 0001 left a gap: postings inserted later for a movement already recorded
rewrite it — a balanced pair changes what it moved, a lone posting unbalances it unseen (the
deferred ``movement_balanced`` check runs only in the transaction that inserts the movement) and
moves a stored balance with it. Each movement now records the transaction that wrote it (``xid``,
as ``audit_events`` does), and postings for a movement of another transaction are refused.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE movements ADD COLUMN xid xid8;
ALTER TABLE movements ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
COMMENT ON COLUMN movements.xid IS 'the transaction that recorded the movement, and with it its postings (NULL: recorded before revision 0009)';

CREATE FUNCTION postings_with_their_movement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    recorded uuid;
BEGIN
    SELECT m.id INTO recorded
      FROM (SELECT DISTINCT movement_id FROM new_postings) p JOIN movements m ON m.id = p.movement_id
     WHERE m.xid IS DISTINCT FROM pg_current_xact_id()
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'postings are append-only with their movement: movement % is already recorded; correct it with a reversal', recorded
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER postings_with_their_movement AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_with_their_movement();
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER postings_with_their_movement ON postings")
    op.execute("DROP FUNCTION postings_with_their_movement()")
    op.execute("ALTER TABLE movements DROP COLUMN xid")
