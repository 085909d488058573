"""A stock account carries its lot's expiry, so the positions due for rotation are found by index.

The daily rotation run reads the positions its policies may call due: those expiring by a date per
material. Found through the lots, they had to be joined to every account (a million on the national
bench); an account that knows its lot's expiry is found through ``accounts_material_expiry``, a
range per material.

Guarantee (enforced here): ``accounts.expires_on`` is always its lot's ``expires_on`` — set from the
lot whenever an account is written, and rewritten on every account of a lot whose expiry changes
(a shelf-life extension). The index holds no balance, so a posting's balance update stays a HOT
update.

Revision ID: 0019
Revises: 0018
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE accounts ADD COLUMN expires_on date;
UPDATE accounts a SET expires_on = l.expires_on FROM lots l WHERE l.id = a.lot_id AND l.expires_on IS NOT NULL;

CREATE FUNCTION accounts_take_lot_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT l.expires_on INTO NEW.expires_on FROM lots l WHERE l.id = NEW.lot_id;
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_take_lot_expiry BEFORE INSERT OR UPDATE OF lot_id, expires_on ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_take_lot_expiry();

CREATE FUNCTION lots_pass_expiry_on() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET expires_on = NEW.expires_on WHERE lot_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER lots_pass_expiry_on AFTER UPDATE OF expires_on ON lots
    FOR EACH ROW WHEN (NEW.expires_on IS DISTINCT FROM OLD.expires_on) EXECUTE FUNCTION lots_pass_expiry_on();

CREATE INDEX accounts_material_expiry ON accounts (material_id, expires_on) WHERE type = 'stock';
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER lots_pass_expiry_on ON lots")
    op.execute("DROP FUNCTION lots_pass_expiry_on()")
    op.execute("DROP TRIGGER accounts_take_lot_expiry ON accounts")
    op.execute("DROP FUNCTION accounts_take_lot_expiry()")
    op.execute("ALTER TABLE accounts DROP COLUMN expires_on")
