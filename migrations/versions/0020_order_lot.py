"""A rotation order carries its lot's place, material, status and expiry, so the open orders are
summed per target without joining the lots.

The daily rotation run weighs what the open orders hold against every target: it sums them per
warehouse, material, owner and the horizons the lot outlives. Found through the lots, each of
tens of thousands of open orders was a probe into a million lots; an order that knows its lot's
warehouse, material, status and expiry is summed from the orders alone.

Guarantee (enforced here): ``rotation_orders.warehouse_id``, ``material_id``, ``lot_status`` and
``lot_expires_on`` are always its lot's ``warehouse_id``, ``material_id``, ``status`` and
``expires_on`` — set from the lot whenever an order is written, and rewritten on every order of a
lot that changes (quarantined, released, re-dated by a shelf-life extension). An order's progress
(``out_quantity``, ``in_quantity``, ``state``) writes none of them and reads no lot.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

SCHEMA = r"""
ALTER TABLE rotation_orders ADD COLUMN warehouse_id bigint, ADD COLUMN material_id bigint, ADD COLUMN lot_status text,
                            ADD COLUMN lot_expires_on date;
UPDATE rotation_orders o
   SET warehouse_id = l.warehouse_id, material_id = l.material_id, lot_status = l.status, lot_expires_on = l.expires_on
  FROM lots l WHERE l.id = o.lot_id;
ALTER TABLE rotation_orders ALTER COLUMN warehouse_id SET NOT NULL, ALTER COLUMN material_id SET NOT NULL,
                            ALTER COLUMN lot_status SET NOT NULL;

CREATE FUNCTION rotation_orders_take_lot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT l.warehouse_id, l.material_id, l.status, l.expires_on
      INTO NEW.warehouse_id, NEW.material_id, NEW.lot_status, NEW.lot_expires_on
      FROM lots l WHERE l.id = NEW.lot_id;
    RETURN NEW;
END $$;
CREATE TRIGGER rotation_orders_take_lot
    BEFORE INSERT OR UPDATE OF lot_id, warehouse_id, material_id, lot_status, lot_expires_on ON rotation_orders
    FOR EACH ROW EXECUTE FUNCTION rotation_orders_take_lot();

CREATE FUNCTION lots_pass_to_rotation_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rotation_orders
       SET warehouse_id = NEW.warehouse_id, material_id = NEW.material_id, lot_status = NEW.status,
           lot_expires_on = NEW.expires_on
     WHERE lot_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER lots_pass_to_rotation_orders AFTER UPDATE OF warehouse_id, material_id, status, expires_on ON lots
    FOR EACH ROW
    WHEN ((NEW.warehouse_id, NEW.material_id, NEW.status, NEW.expires_on)
          IS DISTINCT FROM (OLD.warehouse_id, OLD.material_id, OLD.status, OLD.expires_on))
    EXECUTE FUNCTION lots_pass_to_rotation_orders();

CREATE INDEX rotation_orders_lot ON rotation_orders (lot_id);
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX rotation_orders_lot")
    op.execute("DROP TRIGGER lots_pass_to_rotation_orders ON lots")
    op.execute("DROP FUNCTION lots_pass_to_rotation_orders()")
    op.execute("DROP TRIGGER rotation_orders_take_lot ON rotation_orders")
    op.execute("DROP FUNCTION rotation_orders_take_lot()")
    op.execute("ALTER TABLE rotation_orders DROP COLUMN warehouse_id, DROP COLUMN material_id, DROP COLUMN lot_status, "
               "DROP COLUMN lot_expires_on")
