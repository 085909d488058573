"""Reserve targets: how much of a material (or category, or substitution group) must be held, for
an owner (or a sector, or everyone), in a warehouse or a region and its sub-regions.

Guarantees enforced here: a target names exactly one scope and exactly one of material / category /
substitution group, at most one of owner / sector; ratios lie in [0, 1] with
floor <= critical <= warning.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE reserve_targets (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    scope_warehouse_id  bigint REFERENCES warehouses (id),
    scope_region_id     bigint REFERENCES regions (id),
    material_id         bigint REFERENCES materials (id),
    category            text CHECK (category IN ('fuel', 'food', 'medical')),
    substitution_group  text,
    owner_id            bigint REFERENCES parties (id),
    sector              text CHECK (sector IN ('military', 'civilian', 'enterprise')),
    quantity            numeric(24, 3) NOT NULL CHECK (quantity > 0),
    warning_ratio       numeric(6, 4) NOT NULL CHECK (warning_ratio BETWEEN 0 AND 1),
    critical_ratio      numeric(6, 4) NOT NULL CHECK (critical_ratio BETWEEN 0 AND 1),
    floor_ratio         numeric(6, 4) NOT NULL CHECK (floor_ratio BETWEEN 0 AND 1),
    horizon_days        integer NOT NULL CHECK (horizon_days BETWEEN 0 AND 3650),
    population          integer CHECK (population > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_scope CHECK ((scope_warehouse_id IS NULL) <> (scope_region_id IS NULL)),
    CONSTRAINT one_material_selector CHECK (num_nonnulls(material_id, category, substitution_group) = 1),
    CONSTRAINT at_most_one_holder CHECK (num_nonnulls(owner_id, sector) <= 1),
    CONSTRAINT ratios_ordered CHECK (floor_ratio <= critical_ratio AND critical_ratio <= warning_ratio)
);
COMMENT ON COLUMN reserve_targets.quantity IS 'required quantity in the unit of the material(s) selected';
COMMENT ON COLUMN reserve_targets.floor_ratio IS 'share of the target that allocation and rotation may not draw down';
COMMENT ON COLUMN reserve_targets.horizon_days IS 'stock expiring within this many days does not count as usable';
COMMENT ON COLUMN reserve_targets.population IS 'people (or strength) the target serves, for days of supply';
CREATE INDEX lots_warehouse_material ON lots (warehouse_id, material_id);
"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX lots_warehouse_material")
    op.execute("DROP TABLE reserve_targets")
