"""Mobilisation potential: capacities held outside the reserve, their surveys, and tasking orders.

A capacity is potential, not stock: it has no account, no lot and no posting, so it can never
appear in balances, coverage or floors.

Guarantees (enforced here):
- a capacity's daily quantity is positive, its lead and survey interval are whole days;
- a capacity's survey history keeps one row per survey date, and a survey once recorded is never
  deleted (trigger ``capacity_surveys_kept``);
- a receipt movement counts toward one tasking order at most (``tasking_receipts.movement_id`` is
  unique), and an order is completed only once what it received covers its quantity (a CHECK).

Revision ID: 0018
Revises: 0017
"""

from alembic import op

from stockpile.store.engine import split_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE capacities (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                 text NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    party_id             bigint NOT NULL REFERENCES parties (id),
    material_id          bigint NOT NULL REFERENCES materials (id),
    daily_quantity       bigint NOT NULL CHECK (daily_quantity > 0),
    lead_days            integer NOT NULL CHECK (lead_days BETWEEN 0 AND 3650),
    region_id            bigint NOT NULL REFERENCES regions (id),
    warehouse_id         bigint REFERENCES warehouses (id),
    held_for             text CHECK (held_for IN ('military', 'civilian', 'enterprise')),
    surveyed_on          date NOT NULL,
    survey_interval_days integer NOT NULL CHECK (survey_interval_days BETWEEN 1 AND 3650),
    note                 text NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX capacities_region_material ON capacities (region_id, material_id);
COMMENT ON TABLE capacities IS 'production or storage capacity outside the reserve that can be mobilised; never stock';
COMMENT ON COLUMN capacities.daily_quantity IS 'what it delivers per day once mobilised, in the material''s smallest unit';
COMMENT ON COLUMN capacities.lead_days IS 'days from tasking to the first day of output';
COMMENT ON COLUMN capacities.region_id IS 'the region it delivers to (its output is counted there and in every region above)';
COMMENT ON COLUMN capacities.held_for IS 'the sector its output is earmarked for; a capacity held for the military (or of a military party) is military';
COMMENT ON COLUMN capacities.surveyed_on IS 'the date of its latest survey; past surveyed_on + survey_interval_days it is overdue';

CREATE TABLE capacity_surveys (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    capacity_id      bigint NOT NULL REFERENCES capacities (id),
    surveyed_on      date NOT NULL,
    daily_quantity   bigint NOT NULL CHECK (daily_quantity > 0),
    lead_days        integer NOT NULL,
    note             text NOT NULL DEFAULT '',
    principal_id     bigint REFERENCES principals (id),
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (capacity_id, surveyed_on)
);
COMMENT ON TABLE capacity_surveys IS 'a capacity''s survey history: one row per survey date, as last stated for that date';

CREATE FUNCTION capacity_surveys_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'capacity surveys are never deleted' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER capacity_surveys_kept BEFORE DELETE ON capacity_surveys
    FOR EACH ROW EXECUTE FUNCTION capacity_surveys_kept();

CREATE TABLE taskings (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plan_id        uuid NOT NULL REFERENCES allocation_plans (id),
    request_id     uuid NOT NULL REFERENCES allocation_requests (id),
    capacity_id    bigint NOT NULL REFERENCES capacities (id),
    destination_id bigint NOT NULL REFERENCES warehouses (id),
    material_id    bigint NOT NULL REFERENCES materials (id),
    quantity       bigint NOT NULL CHECK (quantity > 0),
    received       bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
    start_on       date NOT NULL,
    ready_on       date NOT NULL,
    due_on         date NOT NULL,
    state          text NOT NULL DEFAULT 'proposed'
                   CHECK (state IN ('proposed', 'open', 'completed', 'cancelled')),
    ordered_at     timestamptz,
    completed_at   timestamptz,
    CHECK (start_on <= ready_on AND ready_on <= due_on),
    CHECK (state <> 'completed' OR received >= quantity)
);
CREATE INDEX taskings_plan ON taskings (plan_id);
CREATE INDEX taskings_open ON taskings (due_on) WHERE state = 'open';
COMMENT ON TABLE taskings IS 'a plan''s tasking lines (proposed) and, once the plan is approved, tasking orders (open until their receipts cover them)';
COMMENT ON COLUMN taskings.start_on IS 'the latest day the capacity must be tasked to deliver the quantity by due_on';
COMMENT ON COLUMN taskings.ready_on IS 'the first day of output when tasked on start_on (start_on + lead_days)';
COMMENT ON COLUMN taskings.due_on IS 'the need date of the request it serves; open past it, the order is overdue';

CREATE TABLE tasking_receipts (
    tasking_id   uuid NOT NULL REFERENCES taskings (id),
    movement_id  uuid NOT NULL UNIQUE REFERENCES movements (id),
    quantity     bigint NOT NULL CHECK (quantity > 0),
    principal_id bigint REFERENCES principals (id),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tasking_id, movement_id)
);
COMMENT ON TABLE tasking_receipts IS 'receipt movements that delivered a tasking order''s output (each counts toward one order)';
"""


KINDS = "ARRAY['survey_overdue', 'tasking_overdue']"


def _alert_kinds(change: str) -> str:
    """Rebuild the alert kinds' CHECK from the kinds it allows now, ``change`` (an array expression
    over ``kinds``) applied: other revisions add kinds of their own, in whatever order they run."""
    return f"""
DO $$
DECLARE kinds text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO kinds
      FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conname = 'alerts_kind_check' AND c.conrelid = 'alerts'::regclass;
    kinds := {change};
    ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
    EXECUTE format('ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check CHECK (kind = ANY (%L::text[]))', kinds);
END $$"""


def upgrade() -> None:
    for statement in split_sql(SCHEMA):
        op.execute(statement)
    op.execute(_alert_kinds(f"ARRAY(SELECT DISTINCT k FROM unnest(kinds || {KINDS}) k ORDER BY k)"))


def downgrade() -> None:
    op.execute(_alert_kinds(f"ARRAY(SELECT k FROM unnest(kinds) k WHERE k <> ALL ({KINDS}) ORDER BY k)"))
    for table in ("tasking_receipts", "taskings", "capacity_surveys", "capacities"):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP FUNCTION capacity_surveys_kept()")
