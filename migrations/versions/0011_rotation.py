"""Rotation: policies, rotation orders, shelf-life extensions, and the movements that work them.

Reserves are rotated before they spoil: old stock goes out into civilian use (``rotation_out``),
fresh stock comes in (``rotation_in``), each movement carrying the order it works.

Guarantees enforced here:

- A policy applies to exactly one material or one category, and has at least one trigger.
- At most one open (planned / in progress) rotation order per stock position (lot x owner):
  partial unique index ``rotation_orders_open``.
- An order's fresh stock is due no earlier than its old stock leaves (``in_by >= out_by``).
- Every shelf-life test is kept, pass or fail, with the expiry before and after it.

Alerts gain the kind ``shelf_life_failed`` (a lot that failed its test; raised by the request that
records the test, never by the evaluation job, which neither opens nor resolves it).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ALERT_KINDS = (
    "'shortfall', 'expiring', 'expired_on_hand', 'rotation_overdue', 'rotation_blocked', "
    "'transfer_overdue', 'allocation_unfilled', 'count_discrepancy', 'ledger_invariant'"
)

SCHEMA = r"""
CREATE TABLE rotation_policies (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                        text NOT NULL UNIQUE,
    material_id                 bigint REFERENCES materials (id),
    category                    text CHECK (category IN ('fuel', 'food', 'medical')),
    trigger_days_before_expiry  int CHECK (trigger_days_before_expiry >= 0),
    trigger_fraction_remaining  numeric(6, 4) CHECK (trigger_fraction_remaining > 0 AND trigger_fraction_remaining < 1),
    max_out_share               numeric(6, 4) NOT NULL DEFAULT 0.25 CHECK (max_out_share > 0 AND max_out_share <= 1),
    max_gap_days                int NOT NULL DEFAULT 30 CHECK (max_gap_days > 0),
    outlet                      text NOT NULL DEFAULT 'sale' CHECK (outlet IN ('sale', 'consumption', 'donation', 'exchange')),
    lead_days                   int NOT NULL DEFAULT 14 CHECK (lead_days >= 0),
    max_extension_days          int CHECK (max_extension_days > 0),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_material_selector CHECK ((material_id IS NULL) <> (category IS NULL)),
    CONSTRAINT has_a_trigger CHECK (trigger_days_before_expiry IS NOT NULL OR trigger_fraction_remaining IS NOT NULL)
);
COMMENT ON COLUMN rotation_policies.trigger_days_before_expiry IS 'a lot is due for rotation this many days before it expires';
COMMENT ON COLUMN rotation_policies.trigger_fraction_remaining IS 'a lot is due for rotation when less than this share of its shelf life is left';
COMMENT ON COLUMN rotation_policies.max_out_share IS 'largest share of a reserve target that may be out (rotated out, not yet replaced) at once';
COMMENT ON COLUMN rotation_policies.max_gap_days IS 'longest allowed gap between the old stock leaving and the fresh stock arriving';
COMMENT ON COLUMN rotation_policies.lead_days IS 'orders are planned this many days before their out-by date';
COMMENT ON COLUMN rotation_policies.max_extension_days IS 'cap of one shelf-life extension in days; NULL: the material''s shelf life';

CREATE TABLE rotation_orders (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    lot_id        uuid NOT NULL REFERENCES lots (id),
    owner_id      bigint NOT NULL REFERENCES parties (id),
    policy_id     bigint NOT NULL REFERENCES rotation_policies (id),
    quantity      bigint NOT NULL CHECK (quantity > 0),
    out_quantity  bigint NOT NULL DEFAULT 0 CHECK (out_quantity >= 0),
    in_quantity   bigint NOT NULL DEFAULT 0 CHECK (in_quantity >= 0),
    out_by        date NOT NULL,
    in_by         date NOT NULL CHECK (in_by >= out_by),
    outlet        text NOT NULL,
    state         text NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'in_progress', 'completed', 'cancelled')),
    explanation   text NOT NULL,
    cancel_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rotation_orders_open ON rotation_orders (lot_id, owner_id) WHERE state IN ('planned', 'in_progress');
CREATE INDEX rotation_orders_state ON rotation_orders (state, out_by);
COMMENT ON COLUMN rotation_orders.quantity IS 'quantity to rotate out of the position and replace, in the material''s smallest unit';
COMMENT ON COLUMN rotation_orders.out_quantity IS 'rotated out so far by rotation_out movements carrying this order';
COMMENT ON COLUMN rotation_orders.in_quantity IS 'replaced so far by rotation_in movements carrying this order';
COMMENT ON COLUMN rotation_orders.explanation IS 'why the planner chose it (trigger, target, floor headroom)';

CREATE TABLE shelf_life_extensions (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id               uuid NOT NULL REFERENCES lots (id),
    previous_expires_on  date,
    new_expires_on       date,
    test_reference       text NOT NULL,
    result               text NOT NULL CHECK (result IN ('pass', 'fail')),
    principal_id         bigint REFERENCES principals (id),
    recorded_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shelf_life_extensions_lot ON shelf_life_extensions (lot_id, id);
COMMENT ON COLUMN shelf_life_extensions.new_expires_on IS 'the expiry the passed test gave the lot; NULL when the test failed';
COMMENT ON COLUMN shelf_life_extensions.test_reference IS 'the quality test report the re-dating rests on';

ALTER TABLE movements ADD COLUMN rotation_order_id uuid REFERENCES rotation_orders (id);
CREATE INDEX movements_rotation_order ON movements (rotation_order_id) WHERE rotation_order_id IS NOT NULL;
COMMENT ON COLUMN movements.rotation_order_id IS 'the rotation order a rotation_out / rotation_in movement works';
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)
    op.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check")
    op.execute(f"ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ({ALERT_KINDS}, 'shelf_life_failed'))")


def downgrade() -> None:
    op.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check")
    op.execute(f"ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind IN ({ALERT_KINDS}))")
    op.execute("DROP INDEX movements_rotation_order")
    op.execute("ALTER TABLE movements DROP COLUMN rotation_order_id")
    op.execute("DROP TABLE shelf_life_extensions")
    op.execute("DROP TABLE rotation_orders")
    op.execute("DROP TABLE rotation_policies")
